#include "broker/core/metrics.h"

#include <cctype>
#include <initializer_list>
#include <string>

#include "broker/codec/packet.h"
#include "broker/core/broker.h"
#include "broker/core/counters.h"

namespace meshmq::core {

Family Family::counter(std::string name, std::string help, std::vector<Sample> samples) {
  return Family{std::move(name), std::move(help), MetricType::kCounter, std::move(samples), {}};
}

Family Family::gauge(std::string name, std::string help, std::vector<Sample> samples) {
  return Family{std::move(name), std::move(help), MetricType::kGauge, std::move(samples), {}};
}

Family Family::gauge(std::string name, std::string help, double value) {
  return gauge(std::move(name), std::move(help), std::vector<Sample>{Sample{{}, value}});
}

double Family::total() const {
  if (type == MetricType::kHistogram) {
    return histogram.cumulative.empty() ? 0 : static_cast<double>(histogram.cumulative.back());
  }
  double sum = 0;
  for (const Sample& s : samples) sum += s.value;
  return sum;
}

double Family::value(std::string_view key, std::string_view label_value) const {
  for (const Sample& s : samples) {
    for (const auto& [k, v] : s.labels) {
      if (k == key && v == label_value) return s.value;
    }
  }
  return 0;
}

const Family* find(const Snapshot& snapshot, std::string_view name) {
  for (const Family& f : snapshot) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

void MetricsRegistry::add_collector(Collector collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

Snapshot MetricsRegistry::collect() const {
  std::vector<Collector> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  Snapshot out;
  for (const Collector& c : collectors) c(out);
  return out;
}

namespace {

// One row per exported series of a WorkerCounters field; rows with the same name form a family.
struct Row {
  const char* name;
  const char* help;
  MetricType type;
  Labels labels;
  std::function<double(const WorkerCounters&)> read;
};

template <class Field>
Row counter_row(const char* name, const char* help, Labels labels, Field field) {
  return Row{name, help, MetricType::kCounter, std::move(labels),
             [field](const WorkerCounters& c) { return static_cast<double>((c.*field).get()); }};
}

template <class Field>
Row gauge_row(const char* name, const char* help, Field field) {
  return Row{name, help, MetricType::kGauge, {}, [field](const WorkerCounters& c) {
               return static_cast<double>((c.*field).get());
             }};
}

template <std::size_t N>
void per_index(std::vector<Row>& rows, const char* name, const char* help, const char* label,
               CounterArray<N> WorkerCounters::*field, std::initializer_list<std::size_t> indexes,
               const std::function<std::string(std::size_t)>& label_value) {
  for (std::size_t i : indexes) {
    rows.push_back(Row{
        name,
        help,
        MetricType::kCounter,
        {{label, label_value(i)}},
        [field, i](const WorkerCounters& c) { return static_cast<double>((c.*field).get(i)); }});
  }
}

std::string packet_label(std::size_t type) {
  std::string s = codec::packet_type_name(static_cast<codec::PacketType>(type));
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

const std::vector<Row>& worker_rows() {
  static const std::vector<Row> rows = [] {
    std::vector<Row> r;
    auto qos = [](std::size_t q) { return std::to_string(q); };
    per_index(r, "meshmq_messages_received_total", "PUBLISH packets received from clients", "qos",
              &WorkerCounters::messages_received, {0, 1, 2}, qos);
    per_index(r, "meshmq_messages_sent_total", "PUBLISH packets sent to clients (resends included)",
              "qos", &WorkerCounters::messages_sent, {0, 1, 2}, qos);
    per_index(r, "meshmq_messages_received_bytes_total",
              "Payload bytes of PUBLISH packets received from clients", "qos",
              &WorkerCounters::message_bytes_received, {0, 1, 2}, qos);
    per_index(r, "meshmq_messages_sent_bytes_total",
              "Payload bytes of PUBLISH packets sent to clients", "qos",
              &WorkerCounters::message_bytes_sent, {0, 1, 2}, qos);
    const char* dropped = "meshmq_messages_dropped_total";
    const char* dropped_help = "Messages not delivered or not stored, by reason";
    r.push_back(counter_row(dropped, dropped_help, {{"reason", "queue_full"}},
                            &WorkerCounters::dropped_queue_full));
    r.push_back(counter_row(dropped, dropped_help, {{"reason", "slow_consumer"}},
                            &WorkerCounters::dropped_qos0_slow));
    r.push_back(counter_row(dropped, dropped_help, {{"reason", "retained_limit"}},
                            &WorkerCounters::dropped_retained_limit));
    r.push_back(counter_row(dropped, dropped_help, {{"reason", "sys_topic"}},
                            &WorkerCounters::dropped_sys_topic));
    r.push_back(counter_row(dropped, dropped_help, {{"reason", "storage_full"}},
                            &WorkerCounters::dropped_storage_full));
    r.push_back(
        counter_row("meshmq_publishes_refused_storage_failed_total",
                    "QoS 1/2 publishes not acknowledged (connection closed): storage failed", {},
                    &WorkerCounters::refused_storage_failed));
    // Only the types each direction can carry: a broker never receives CONNACK nor sends CONNECT.
    using T = codec::PacketType;
    auto n = [](T t) { return static_cast<std::size_t>(t); };
    per_index(
        r, "meshmq_packets_received_total", "MQTT packets received, by type", "type",
        &WorkerCounters::packets_received,
        {n(T::kConnect), n(T::kPublish), n(T::kPuback), n(T::kPubrec), n(T::kPubrel),
         n(T::kPubcomp), n(T::kSubscribe), n(T::kUnsubscribe), n(T::kPingreq), n(T::kDisconnect)},
        packet_label);
    per_index(r, "meshmq_packets_sent_total", "MQTT packets sent, by type", "type",
              &WorkerCounters::packets_sent,
              {n(T::kConnack), n(T::kPublish), n(T::kPuback), n(T::kPubrec), n(T::kPubrel),
               n(T::kPubcomp), n(T::kSuback), n(T::kUnsuback), n(T::kPingresp)},
              packet_label);
    r.push_back(counter_row("meshmq_network_received_bytes_total",
                            "Bytes read from client connections", {},
                            &WorkerCounters::bytes_received));
    r.push_back(counter_row("meshmq_network_sent_bytes_total",
                            "Bytes queued for writing to client connections", {},
                            &WorkerCounters::bytes_sent));
    r.push_back(counter_row("meshmq_connections_opened_total", "Client transports accepted", {},
                            &WorkerCounters::connections_opened));
    r.push_back(counter_row("meshmq_connections_closed_total", "Client transports closed", {},
                            &WorkerCounters::connections_closed));
    r.push_back(counter_row("meshmq_protocol_errors_total",
                            "Connections closed for malformed or unexpected packets", {},
                            &WorkerCounters::protocol_errors));
    const char* auth_failures = "meshmq_auth_failures_total";
    const char* auth_help = "CONNECTs refused by authentication, by CONNACK reason";
    r.push_back(counter_row(auth_failures, auth_help, {{"reason", "bad_credentials"}},
                            &WorkerCounters::auth_bad_credentials));
    r.push_back(counter_row(auth_failures, auth_help, {{"reason", "not_authorized"}},
                            &WorkerCounters::auth_not_authorized));
    const char* acl_denied = "meshmq_acl_denied_total";
    const char* acl_help =
        "PUBLISH dropped, subscriptions refused and deliveries withheld by the ACL, by action";
    r.push_back(counter_row(acl_denied, acl_help, {{"action", "publish"}},
                            &WorkerCounters::acl_publish_denied));
    r.push_back(counter_row(acl_denied, acl_help, {{"action", "subscribe"}},
                            &WorkerCounters::acl_subscribe_denied));
    r.push_back(counter_row(acl_denied, acl_help, {{"action", "deliver"}},
                            &WorkerCounters::acl_deliver_denied));
    const char* limit_hits = "meshmq_limit_hits_total";
    const char* limit_help = "Times a configured limit refused or slowed a client, by limit";
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "max_packet_size"}},
                            &WorkerCounters::limit_packet_too_large));
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "connect_timeout"}},
                            &WorkerCounters::limit_connect_timeout));
    r.push_back(
        counter_row(limit_hits, limit_help, {{"limit", "topic"}}, &WorkerCounters::limit_topic));
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "subscriptions"}},
                            &WorkerCounters::limit_subscriptions));
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "publish_rate"}},
                            &WorkerCounters::limit_publish_throttled));
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "max_connections"}},
                            &WorkerCounters::limit_connections));
    r.push_back(counter_row(limit_hits, limit_help, {{"limit", "connect_rate"}},
                            &WorkerCounters::limit_connect_rate));
    r.push_back(gauge_row("meshmq_connections", "Clients connected (CONNACK accepted, not closed)",
                          &WorkerCounters::clients_connected));
    r.push_back(gauge_row("meshmq_queued_messages",
                          "Messages waiting in session queues (offline or beyond the inflight "
                          "window)",
                          &WorkerCounters::queued_messages));
    r.push_back(gauge_row("meshmq_inflight_messages",
                          "Outbound QoS 1/2 messages sent and not yet acknowledged",
                          &WorkerCounters::inflight_messages));
    r.push_back(counter_row("meshmq_window_waits_total",
                            "Messages for a connected client queued (or dropped, the queue being "
                            "full) because its inflight window or output buffer was full",
                            {}, &WorkerCounters::window_waits));
    r.push_back(counter_row("meshmq_backlog_waits_total",
                            "Window waits behind a queue already one inflight window deep: "
                            "acknowledgements bound the throughput, so workers do not pause",
                            {}, &WorkerCounters::backlog_waits));
    r.push_back(counter_row("meshmq_worker_pauses_total",
                            "Busy event-loop passes followed by a pause of at most "
                            "broker.batch_window_us",
                            {}, &WorkerCounters::worker_pauses));
    return r;
  }();
  return rows;
}

Family latency_family(Broker& broker) {
  Family f;
  f.name = "meshmq_publish_deliver_latency_seconds";
  f.help = "Time from receiving a PUBLISH to writing it to a subscriber's connection";
  f.type = MetricType::kHistogram;
  constexpr auto& bounds = LatencyHistogram::kBoundsNs;
  std::vector<std::uint64_t> counts(bounds.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (std::size_t w = 0; w < broker.worker_count(); ++w) {
    const LatencyHistogram& h = broker.counters(w).deliver_latency;
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += h.buckets[i].get();
    sum_ns += h.sum_ns.get();
  }
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    running += counts[i];
    f.histogram.cumulative.push_back(running);
    if (i < bounds.size()) f.histogram.bounds.push_back(static_cast<double>(bounds[i]) / 1e9);
  }
  f.histogram.sum = static_cast<double>(sum_ns) / 1e9;
  return f;
}

}  // namespace

void add_broker_metrics(MetricsRegistry& registry, Broker& broker) {
  registry.add_collector([&broker](Snapshot& out) {
    for (const Row& row : worker_rows()) {
      double sum = 0;
      for (std::size_t w = 0; w < broker.worker_count(); ++w) sum += row.read(broker.counters(w));
      if (out.empty() || out.back().name != row.name) {
        out.push_back(Family{row.name, row.help, row.type, {}, {}});
      }
      out.back().samples.push_back(Sample{row.labels, sum});
    }
    out.push_back(latency_family(broker));
    const BrokerStats s = broker.stats();
    out.push_back(Family::gauge("meshmq_sessions", "Sessions (connected and offline persistent)",
                                static_cast<double>(s.sessions)));
    out.push_back(Family::gauge("meshmq_subscriptions", "Subscriptions ((filter, session) pairs)",
                                static_cast<double>(s.subscriptions)));
    out.push_back(Family::gauge("meshmq_routes", "Distinct topic filters with a subscriber",
                                static_cast<double>(s.routes)));
    out.push_back(Family::gauge("meshmq_retained_messages", "Retained messages stored",
                                static_cast<double>(s.retained)));
  });
}

}  // namespace meshmq::core
