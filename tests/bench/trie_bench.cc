// SubscriptionTrie at broker scale: 1,000,000 clients each subscribed to its own "dev/<i>/temp",
// plus a few thousand wildcard filters overlapping them. Measures match, insert and erase times on
// that trie, and its memory: node count and process RSS growth per subscription.
//
// Ids are std::shared_ptr<Session> as in the broker; the sessions exist before the trie is built,
// so the RSS figure is the trie's own cost (nodes, child tables, subscriber entries).
//
// Run: build-topic-rel/tests/bench/trie_bench [--benchmark_filter=...]

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "broker/topic/subscription_trie.h"

namespace {

using meshmq::topic::SubscriptionTrie;

struct Session {
  std::uint64_t id;
};
using SessionPtr = std::shared_ptr<Session>;
using Trie = SubscriptionTrie<SessionPtr, std::uint8_t>;

constexpr int kClients = 1'000'000;
constexpr int kSiteFilters = 2'000;            // "site/<k>/#"
constexpr int kDevWildcards = 1'000;           // "dev/<k>/+"
constexpr int kStatusFilters = 1'000;          // "+/<k>/status"
constexpr int kDevPlusSubscribers = 10;        // "dev/+/temp"
constexpr int kDevHashSubscribers = 5;         // "dev/#"
constexpr int kPlusPlusSubscribers = 2;        // "+/+/temp"
constexpr int kBigFilterSubscribers = 10'000;  // "fleet/+/alarm"
constexpr std::size_t kTopicSamples = 1 << 16;

long resident_bytes() {
  long pages_total = 0, pages_resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return pages_resident * sysconf(_SC_PAGESIZE);
}

// Formats prefix + n + suffix into buf without allocating.
std::string_view format(char (&buf)[64], std::string_view prefix, std::uint64_t n,
                        std::string_view suffix) {
  constexpr std::size_t kMaxDigits = 20;
  if (prefix.size() + kMaxDigits + suffix.size() > sizeof buf) std::abort();
  char* p = buf + prefix.copy(buf, prefix.size());
  p = std::to_chars(p, p + kMaxDigits, n).ptr;
  p += suffix.copy(p, suffix.size());
  return {buf, static_cast<std::size_t>(p - buf)};
}

struct World {
  std::vector<SessionPtr> sessions;
  std::vector<std::string> random_topics;  // "dev/<random i>/temp"
  Trie trie;
  long rss_growth = 0;
  double build_seconds = 0;

  World() {
    sessions.reserve(kClients);
    for (int i = 0; i < kClients; ++i) {
      sessions.push_back(std::make_shared<Session>(Session{static_cast<std::uint64_t>(i)}));
    }
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < kTopicSamples; ++i) {
      random_topics.push_back("dev/" + std::to_string(rng() % kClients) + "/temp");
    }

    const long before = resident_bytes();
    const auto start = std::chrono::steady_clock::now();
    char buf[64];
    for (int i = 0; i < kClients; ++i) {
      trie.insert(format(buf, "dev/", i, "/temp"), sessions[i], 1);
    }
    for (int k = 0; k < kSiteFilters; ++k) {
      trie.insert(format(buf, "site/", k, "/#"), sessions[k], 0);
    }
    for (int k = 0; k < kDevWildcards; ++k) {
      trie.insert(format(buf, "dev/", k, "/+"), sessions[k], 1);
    }
    for (int k = 0; k < kStatusFilters; ++k) {
      trie.insert(format(buf, "+/", k, "/status"), sessions[k], 1);
    }
    for (int k = 0; k < kDevPlusSubscribers; ++k) trie.insert("dev/+/temp", sessions[k], 0);
    for (int k = 0; k < kDevHashSubscribers; ++k) trie.insert("dev/#", sessions[k], 2);
    for (int k = 0; k < kPlusPlusSubscribers; ++k) trie.insert("+/+/temp", sessions[k], 0);
    for (int k = 0; k < kBigFilterSubscribers; ++k) trie.insert("fleet/+/alarm", sessions[k], 1);
    build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rss_growth = resident_bytes() - before;
  }
};

World& world() {
  static World w;
  return w;
}

void report_memory(benchmark::State& state) {
  World& w = world();
  state.counters["subscriptions"] = static_cast<double>(w.trie.size());
  state.counters["filters"] = static_cast<double>(w.trie.filter_count());
  state.counters["nodes"] = static_cast<double>(w.trie.node_count());
  state.counters["rss_MiB"] = static_cast<double>(w.rss_growth) / (1 << 20);
  state.counters["bytes_per_sub"] =
      static_cast<double>(w.rss_growth) / static_cast<double>(w.trie.size());
  state.counters["build_ns_per_sub"] = w.build_seconds * 1e9 / static_cast<double>(w.trie.size());
}

// The figure that matters for fan-out: a publish to one device's topic, which hits its own exact
// filter and ~17 wildcard subscriptions, on a random device (cold cache lines, as in production).
void BM_MatchRandomDevice(benchmark::State& state) {
  World& w = world();
  std::size_t i = 0, visits = 0;
  for (auto _ : state) {
    w.trie.match(w.random_topics[i++ & (kTopicSamples - 1)],
                 [&](const SessionPtr&, std::uint8_t) { ++visits; });
  }
  state.counters["visits_per_match"] =
      static_cast<double>(visits) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  report_memory(state);
}
BENCHMARK(BM_MatchRandomDevice);

// The same topic over and over: the trie path stays in cache.
void BM_MatchHotDevice(benchmark::State& state) {
  World& w = world();
  std::size_t visited = 0;
  for (auto _ : state) {
    w.trie.match("dev/123/temp", [&](const SessionPtr&, std::uint8_t qos) { visited += qos + 1; });
  }
  benchmark::DoNotOptimize(visited);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_MatchHotDevice);

// A topic nobody subscribes to still walks the root '+' branch.
void BM_MatchNoSubscriber(benchmark::State& state) {
  World& w = world();
  std::size_t visited = 0;
  for (auto _ : state) {
    w.trie.match("other/x/y", [&](const SessionPtr&, std::uint8_t) { ++visited; });
  }
  benchmark::DoNotOptimize(visited);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_MatchNoSubscriber);

// A '$SYS' topic skips every root wildcard.
void BM_MatchSysTopic(benchmark::State& state) {
  World& w = world();
  std::size_t visited = 0;
  for (auto _ : state) {
    w.trie.match("$SYS/broker/clients", [&](const SessionPtr&, std::uint8_t) { ++visited; });
  }
  benchmark::DoNotOptimize(visited);
}
BENCHMARK(BM_MatchSysTopic);

// Inserts and erases run in batches of new devices, "dev/<kClients + k>/temp", next to the million
// existing ones, so the big child table neither grows nor shrinks (as in a running broker) and the
// freed nodes are reused (the cost of first touching new heap pages shows in build_ns_per_sub).
constexpr std::uint64_t kBatch = 4096;

std::string_view new_device_filter(char (&buf)[64], std::uint64_t k) {
  return format(buf, "dev/", kClients + k, "/temp");
}
void insert_new_devices(World& w, std::uint64_t count) {
  char buf[64];
  for (std::uint64_t k = 0; k < count; ++k) {
    w.trie.insert(new_device_filter(buf, k), w.sessions[k % kClients], 1);
  }
}
void erase_new_devices(World& w, std::uint64_t count) {
  char buf[64];
  for (std::uint64_t k = 0; k < count; ++k) {
    w.trie.erase(new_device_filter(buf, k), w.sessions[k % kClients]);
  }
}

// Subscribing a new client to its own filter (two new nodes). Includes formatting the filter into
// a stack buffer (~10 ns).
void BM_InsertNewFilter(benchmark::State& state) {
  World& w = world();
  char buf[64];
  std::uint64_t k = 0;
  for (auto _ : state) {
    w.trie.insert(new_device_filter(buf, k), w.sessions[k % kClients], 1);
    if (++k == kBatch) {
      state.PauseTiming();
      erase_new_devices(w, k);
      k = 0;
      state.ResumeTiming();
    }
  }
  erase_new_devices(w, k);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_InsertNewFilter);

// Unsubscribing it, which frees the two nodes.
void BM_EraseFilter(benchmark::State& state) {
  World& w = world();
  char buf[64];
  std::uint64_t k = kBatch;
  for (auto _ : state) {
    if (k == kBatch) {
      state.PauseTiming();
      insert_new_devices(w, kBatch);
      k = 0;
      state.ResumeTiming();
    }
    w.trie.erase(new_device_filter(buf, k), w.sessions[k % kClients]);
    ++k;
  }
  for (; k < kBatch; ++k) w.trie.erase(new_device_filter(buf, k), w.sessions[k % kClients]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_EraseFilter);

// Unsubscribe + resubscribe of one member of a filter with 10,000 subscribers: must be O(1).
void BM_EraseInsertBigFilter(benchmark::State& state) {
  World& w = world();
  std::mt19937 rng(7);
  for (auto _ : state) {
    const SessionPtr& s = w.sessions[rng() % kBigFilterSubscribers];
    w.trie.erase("fleet/+/alarm", s);
    w.trie.insert("fleet/+/alarm", s, 1);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_EraseInsertBigFilter);

}  // namespace

BENCHMARK_MAIN();
