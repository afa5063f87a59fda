// Codec hot paths: decoding PUBLISH (64 B and 1 KiB payloads), CONNECT and SUBSCRIBE, and
// encode_publish into a reused buffer. Run a Release build:  build-rel/tests/bench/codec_bench
#include <benchmark/benchmark.h>

#include <span>
#include <string>

#include "broker/codec/decoder.h"
#include "broker/codec/encoder.h"

namespace {

using namespace meshmq::codec;

const std::string kTopic = "building/7/floor/3/room/12/temperature";

std::string wire(const Packet& packet) {
  std::string out;
  encode(packet, out);
  return out;
}

void decode_loop(benchmark::State& state, const std::string& bytes) {
  Decoder decoder;
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  for (auto _ : state) {
    std::span<const std::uint8_t> input(data, bytes.size());
    DecodeResult result = decoder.next(input);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}

void BM_DecodePublish(benchmark::State& state) {
  const std::string bytes = wire(Publish{.topic = kTopic,
                                         .payload = std::string(state.range(0), 'x'),
                                         .qos = QoS::kAtLeastOnce,
                                         .packet_id = 42});
  decode_loop(state, bytes);
}
BENCHMARK(BM_DecodePublish)->Arg(64)->Arg(1024);

// The buffered path: each PUBLISH arrives split across two reads.
void BM_DecodePublishSplit(benchmark::State& state) {
  const std::string bytes = wire(Publish{.topic = kTopic,
                                         .payload = std::string(state.range(0), 'x'),
                                         .qos = QoS::kAtLeastOnce,
                                         .packet_id = 42});
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const std::size_t half = bytes.size() / 2;
  Decoder decoder;
  for (auto _ : state) {
    std::span<const std::uint8_t> first(data, half);
    std::span<const std::uint8_t> second(data + half, bytes.size() - half);
    benchmark::DoNotOptimize(decoder.next(first));
    DecodeResult result = decoder.next(second);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_DecodePublishSplit)->Arg(64)->Arg(1024);

void BM_DecodeConnect(benchmark::State& state) {
  const std::string bytes = wire(Connect{
      .client_id = "sensor-gateway-0042",
      .keepalive = 60,
      .will = Will{.topic = "gateways/0042/status", .payload = "offline", .qos = QoS::kAtLeastOnce},
      .username = "gateway",
      .password = "s3cr3t-token-value",
  });
  decode_loop(state, bytes);
}
BENCHMARK(BM_DecodeConnect);

void BM_DecodeSubscribe(benchmark::State& state) {
  const std::string bytes =
      wire(Subscribe{.packet_id = 7,
                     .topics = {{"building/7/+/3/#", QoS::kAtLeastOnce},
                                {"alerts/#", QoS::kExactlyOnce},
                                {"$SYS/broker/clients/connected", QoS::kAtMostOnce}}});
  decode_loop(state, bytes);
}
BENCHMARK(BM_DecodeSubscribe);

void BM_EncodePublish(benchmark::State& state) {
  const std::string payload(state.range(0), 'x');
  std::string out;
  for (auto _ : state) {
    out.clear();  // keeps capacity, as a connection's write buffer would
    encode_publish(out, kTopic, payload, QoS::kAtLeastOnce, false, false, 42);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_EncodePublish)->Arg(64)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
