// loopback-echo: the latency of the machine itself, with no broker. One thread echoes on a
// loopback TCP connection (TCP_NODELAY), pinned to the broker's core; the main thread, pinned to
// the tool's core, sends a timestamp at a fixed rate and records each round trip. That is the same
// path a message takes through a broker (two loopback hops and two wakeups) minus the broker's own
// work, so its tail is what the machine adds to any broker's: on the benchmark VM, stalls of the
// whole VM of 50-100 ms in some runs (README "Rounds").
//
//   loopback-echo [--rate MSG_PER_S] [-d SECONDS] [--echo-cpu N] [--send-cpu N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench/cores.h"
#include "tools/bench/histogram.h"
#include "tools/bench/payload.h"

namespace {

using meshmq::bench::now_ns;
using meshmq::bench::pin_to_core;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

void nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Connected loopback TCP pair: {client, server}.
std::pair<int, int> connect_pair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(listener >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  check(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "bind");
  check(::listen(listener, 1) == 0, "listen");
  check(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
  const int server = ::accept(listener, nullptr, nullptr);
  check(server >= 0, "accept");
  ::close(listener);
  nodelay(client);
  nodelay(server);
  return {client, server};
}

void echo(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 || ::write(fd, buf, static_cast<std::size_t>(n)) != n) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  double rate = 5000;
  double seconds = 10;
  int echo_cpu = 1;
  int send_cpu = 0;
  CLI::App app{
      "Round trips over loopback TCP at a fixed rate, with no broker: the machine's own "
      "latency"};
  app.add_option("--rate", rate, "round trips per second")->check(CLI::PositiveNumber);
  app.add_option("-d,--duration", seconds, "seconds")->check(CLI::PositiveNumber);
  app.add_option("--echo-cpu", echo_cpu, "core of the echoing thread (-1: any)");
  app.add_option("--send-cpu", send_cpu, "core of the sending thread (-1: any)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto [client, server] = connect_pair();
    std::thread echoer([fd = server, echo_cpu] {
      pin_to_core(echo_cpu);
      echo(fd);
    });
    pin_to_core(send_cpu);
    meshmq::bench::Histogram hist;
    const auto interval = static_cast<std::uint64_t>(1e9 / rate);
    const auto total = static_cast<std::uint64_t>(rate * seconds);
    const std::uint64_t start = now_ns();
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    std::vector<double> stalls;  // seconds into the run of round trips of 20 ms or more
    while (received < total) {
      const std::uint64_t t = now_ns();
      const std::uint64_t due = start + sent * interval;
      if (sent < total && t >= due) {
        check(::write(client, &t, sizeof t) == sizeof t, "write");
        ++sent;
        continue;
      }
      const std::uint64_t wait = sent < total ? due - t : 1'000'000'000;
      timespec ts{static_cast<time_t>(wait / 1'000'000'000),
                  static_cast<long>(wait % 1'000'000'000)};
      pollfd pfd{client, POLLIN, 0};
      if (::ppoll(&pfd, 1, &ts, nullptr) <= 0) continue;
      std::uint64_t stamps[512];
      const ssize_t n = ::read(client, stamps, sizeof stamps);
      check(n > 0, "read");
      const std::uint64_t back = now_ns();
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof stamps[0]); ++i, ++received) {
        const std::uint64_t rtt = back - stamps[i];
        hist.record(rtt);
        if (rtt >= 20'000'000 && (stalls.empty() || (stamps[i] - start) / 1e9 - stalls.back() > 1))
          stalls.push_back(static_cast<double>(stamps[i] - start) / 1e9);
      }
    }
    ::shutdown(client, SHUT_RDWR);
    echoer.join();
    std::printf(
        "{\"rate\":%.0f,\"round_trips\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
        "\"p99_9_us\":%.1f,\"max_us\":%.1f,\"stalls_at_s\":[",
        rate, static_cast<unsigned long long>(received), hist.percentile(50) / 1e3,
        hist.percentile(99) / 1e3, hist.percentile(99.9) / 1e3,
        static_cast<double>(hist.max()) / 1e3);
    for (std::size_t i = 0; i < stalls.size(); ++i) {
      std::printf("%s%.2f", i ? "," : "", stalls[i]);
    }
    std::printf("]}\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loopback-echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
