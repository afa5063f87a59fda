#include "broker/config/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>
#include <string_view>

namespace meshmq::config {
namespace {

// spdlog's own %l prints "warning", which would not match the level names used in the config.
class LevelFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }

 private:
  static std::string_view level_name(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
        return "trace";
      case spdlog::level::debug:
        return "debug";
      case spdlog::level::info:
        return "info";
      case spdlog::level::warn:
        return "warn";
      case spdlog::level::err:
        return "error";
      case spdlog::level::critical:
        return "critical";
      default:
        return "off";
    }
  }
};

std::unique_ptr<spdlog::formatter> make_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<LevelFlag>('q').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %q [%n] %v");
  return formatter;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "info") return spdlog::level::info;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return std::nullopt;
}

std::shared_ptr<spdlog::sinks::sink> stderr_sink() {
  static const auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return sink;
}

std::mutex registry_mutex;  // spdlog::get + register is not atomic

}  // namespace

void setup_logging(const std::string& level) {
  std::lock_guard lock(registry_mutex);
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("node", stderr_sink()));
  spdlog::set_formatter(make_formatter());
  auto parsed = parse_level(level);
  spdlog::set_level(parsed.value_or(spdlog::level::info));
  if (!parsed) spdlog::warn("unknown log level \"{}\", using info", level);
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard lock(registry_mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto created = std::make_shared<spdlog::logger>(component, stderr_sink());
  spdlog::initialize_logger(created);
  return created;
}

}  // namespace meshmq::config
