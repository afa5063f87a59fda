// Process-wide logging setup on spdlog.
//
// Log format: one line per message on stderr,
//   2026-11-25T11:00:00.123Z info [node] listening on 0.0.0.0:1883
//   |                        |    |      message
//   |                        |    component: the logger's name; "node" for the default logger
//   |                        level: trace, debug, info, warn, error or critical
//   UTC time, ISO 8601 with milliseconds
// UTC and a fixed field order keep lines from different nodes sortable and easy to parse when a
// cluster's logs are collected in one place. No colours: stderr usually goes to a collector.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace meshmq::config {

// Installs the stderr format above for all loggers and sets the level (trace, debug, info, warn,
// error or off, as validated by the config; anything else falls back to info with a warning).
void setup_logging(const std::string& level);

// The logger for a component ("cluster", "mqtt", ...), created on first use; it shares the sink,
// format and level of the default logger.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

}  // namespace meshmq::config
