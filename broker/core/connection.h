// The protocol side of one client network connection: consumes bytes, drives the MQTT state machine
// against the broker, and produces output bytes. Transports (TCP now; TLS and WebSocket later)
// derive from it and implement the four transport_* hooks; they hold no protocol logic.
//
// Threading: a connection lives on one worker; every method runs there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/codec/decoder.h"
#include "broker/codec/packet.h"
#include "broker/core/access.h"
#include "broker/core/message.h"
#include "broker/core/ring_queue.h"
#include "broker/core/session.h"

namespace meshmq::core {

class Broker;
struct WorkerCounters;

// A listener's count of its connections, released when a connection it admitted is destroyed.
// One per listener, shared by its connections: each holds a pointer (a TicketHold), no
// allocation of its own.
class AdmissionTicket {
 public:
  virtual void release() = 0;

 protected:
  ~AdmissionTicket() = default;
};
struct ReleaseTicket {
  void operator()(AdmissionTicket* ticket) const { ticket->release(); }
};
using TicketHold = std::unique_ptr<AdmissionTicket, ReleaseTicket>;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Broker& broker, std::size_t worker, std::string peer);
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // --- called by the transport ---
  void start();  // arms the CONNECT timeout
  void on_bytes(std::span<const std::uint8_t> data);
  void on_timer();
  void on_transport_closed(std::string_view reason);  // EOF or socket error
  void on_output_drained();                           // everything queued was written

  // --- called by the session and the broker ---
  bool can_write() const;
  void send_publish(const Message& message, QoS qos, bool retain, bool dup, std::uint16_t id);
  void send(const codec::Packet& packet);
  // Closes the connection; the will is published unless the client sent DISCONNECT.
  void close(std::string_view reason, bool publish_will = true);
  void finish_connect(SessionPtr session, bool session_present);
  void finish_subscribe(const codec::Suback& suback);
  void finish_unsubscribe(std::uint16_t packet_id);
  void reject_connect(codec::ConnectReturnCode code, std::string_view reason);

  bool closed() const { return closed_; }
  std::size_t worker() const { return worker_; }
  const std::string& client_id() const { return session_ ? session_->client_id() : client_id_; }
  // The authenticated user name (empty for anonymous clients).
  const std::string& username() const;
  // Common name of a TLS client certificate that passed verification (empty without one).
  const std::string& cert_common_name() const;
  Principal principal() const { return Principal{client_id(), username()}; }
  void hold(TicketHold ticket) { ticket_ = std::move(ticket); }
  const std::string& peer() const { return peer_; }
  const SessionPtr& session() const { return session_; }

 protected:
  // Write out_ soon (the transport batches: one write per event-loop pass).
  virtual void transport_flush() = 0;
  // Write what is queued (best effort), then close the socket. Called once.
  virtual void transport_close() = 0;
  virtual void transport_pause_reading(bool paused) = 0;
  // Call on_timer() after `delay`, replacing any earlier timer.
  virtual void transport_arm_timer(std::chrono::milliseconds delay) = 0;
  // For transports that verified a client certificate; call before the first on_bytes(). With
  // `as_username` (tls.cn_as_username) the CN is the client's identity for authentication and
  // the ACL, whatever user name and password the CONNECT carries.
  void set_cert_common_name(std::string cn, bool as_username);
  // Output bytes the transport holds outside out_ (being written), counted against
  // max_outgoing_bytes with out_.
  virtual std::size_t transport_backlog() const { return 0; }

  // Output not yet handed to the transport. It counts against max_outgoing_bytes so a slow reader
  // cannot grow the broker's memory without bound.
  std::string out_;

 private:
  enum class State : std::uint8_t { kAwaitConnect, kConnecting, kConnected, kClosed };

  void process(std::span<const std::uint8_t> data);
  void hold_input(std::span<const std::uint8_t> data);
  void block();    // stop consuming input until an asynchronous broker operation finishes
  void unblock();  // resume, first with the input held while blocked
  void handle(codec::Packet&& packet);
  void handle_connect(codec::Connect&& connect);
  // Checks the credentials (off the worker when slow), then finish_authentication() continues
  // on this worker: a CONNACK refusal, or the session.
  void authenticate(codec::Connect&& connect);
  void finish_authentication(AuthResult auth, bool clean_session);
  void handle_publish(const codec::PublishView& publish);
  // Sends a PUBACK/PUBREC once what it depends on is done (store commit, other nodes' accept),
  // always in the order of the publishes (MQTT-4.6.0-2, -3).
  void acknowledge(codec::Packet ack, bool remote_pending);
  void release_ack(std::uint64_t seq);
  std::function<void()> remote_ack_callback();
  void handle_decode_error(codec::DecodeError error);
  void arm_keepalive();
  bool admit_publish(const codec::PublishView& p);  // limits and ACL; false = dropped
  bool throttle_publishes();                        // limits.publish_rate; true = reading paused
  void count_sent(std::size_t bytes_before, codec::PacketType type);
  WorkerCounters& counters();

  Broker& broker_;
  const std::size_t worker_;
  const std::string peer_;
  codec::Decoder decoder_;
  State state_ = State::kAwaitConnect;
  bool closed_ = false;
  bool blocked_ = false;
  std::unique_ptr<std::string> held_;  // input received while blocked; rarely any
  // Until the session is attached (then the session's copy serves), and again after it is gone.
  std::string client_id_;
  std::uint16_t keepalive_s_ = 0;
  Clock::time_point last_rx_;
  SessionPtr session_;
  // What only some clients use (a user name, a certificate, a will, limits.publish_rate), out of
  // line and allocated on first use: an anonymous idle connection pays one pointer for it all.
  struct Throttle;
  struct Extras;
  std::unique_ptr<Extras> extras_;
  Extras& extras();
  codec::Will* will() const;
  void drop_will();
  Throttle* throttle() const;
  TicketHold ticket_;
  // A PUBACK or PUBREC waiting for its publish to be durable or accepted by other nodes. Four
  // bytes, in a queue that owns no memory while empty.
  struct HeldAck {
    std::uint16_t packet_id;
    bool pubrec;
    std::int8_t waits;  // conditions still outstanding
  };
  RingQueue<HeldAck> held_acks_;
  std::uint64_t held_base_ = 0;  // sequence number of held_acks_.front()
};

}  // namespace meshmq::core
