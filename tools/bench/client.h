// One MQTT client of the load: an idle connection, a publisher or a subscriber. Lives on one
// worker thread. The hot path (publish, receive, acknowledge) allocates nothing once its buffers
// have grown: packets are appended to a reused output buffer and written in batches, and received
// packets are parsed where they lie in the worker's scratch buffer.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/codec/packet.h"
#include "tools/bench/framer.h"
#include "tools/bench/seq_tracker.h"
#include "tools/bench/transport.h"

namespace meshmq::bench {

class Worker;
struct ClientSpec;
struct RunContext;
struct WorkerStats;

class Client final : public TransportOwner {
 public:
  enum class State : std::uint8_t {
    kNew,
    kConnecting,   // TCP (and WebSocket upgrade)
    kConnack,      // CONNECT sent
    kSubscribing,  // SUBSCRIBE sent
    kReady,
    kClosing,  // DISCONNECT queued
    kClosed,
  };

  Client(Worker& worker, std::size_t global_index, const ClientSpec& spec);
  ~Client();

  void start();
  void start_publishing(std::uint64_t t0_ns);
  void stop_publishing();
  void disconnect();
  // Called by the worker a few times a second: keepalive and connect timeout.
  void tick(std::uint64_t now);

  const ClientSpec& spec() const { return spec_; }
  State state() const { return state_; }
  bool became_ready() const { return became_ready_; }
  std::uint64_t sent() const { return seq_; }

 private:
  void on_open(const boost::system::error_code& ec) override;
  void on_data(std::span<const std::uint8_t> bytes) override;
  void on_read_error(const boost::system::error_code& ec) override;
  void on_written(const boost::system::error_code& ec) override;

  void handle_packet(codec::Packet&& packet);
  void handle_publish(const PublishView& p, std::uint64_t now);
  void become_ready();
  void release(std::uint16_t packet_id, std::uint8_t expected_state);

  void pump();
  bool window_open() const;
  void append_publish(std::uint64_t now);
  void flush();
  void arm_timer(std::uint64_t due_ns);
  // Ends the client. `error` says why if it did not end by our own DISCONNECT.
  void finish(const char* error = nullptr, const std::string& detail = {});

  Worker& worker_;
  const RunContext& ctx_;
  const ClientSpec& spec_;
  WorkerStats& stats_;
  std::size_t index_;
  std::unique_ptr<Transport> transport_;
  State state_ = State::kNew;
  bool became_ready_ = false;
  std::uint64_t started_ns_ = 0;
  std::uint64_t last_send_ns_ = 0;

  Framer framer_;
  std::string out_;      // packets waiting for the next write
  std::string writing_;  // the write in flight
  bool write_in_flight_ = false;

  // Publisher.
  std::string payload_;
  std::uint64_t seq_ = 0;  // next sequence, = messages sent
  std::uint64_t pub_start_ns_ = 0;
  bool publishing_ = false;
  bool done_ = false;
  std::optional<boost::asio::steady_timer> timer_;
  bool timer_armed_ = false;
  // QoS 1/2 window: packet id p uses slot p-1; 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting
  // PUBCOMP.
  std::vector<std::uint8_t> slots_;
  std::vector<std::uint16_t> free_ids_;

  // Subscriber.
  SeqTracker tracker_;
};

}  // namespace meshmq::bench
