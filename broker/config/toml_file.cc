// Reading the TOML config file into source-neutral settings. Kept apart from the rest so that
// only this file pays for the toml++ headers.
#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "broker/config/keys.h"

namespace meshmq::config::detail {
namespace {

std::string location(const std::string& path, const toml::source_region& source) {
  if (source.begin.line == 0) return path;
  return path + ":" + std::to_string(source.begin.line) + ":" + std::to_string(source.begin.column);
}

RawValue raw_value(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return RawValue::from_string(node.as_string()->get());
    case toml::node_type::integer:
      return RawValue::from_integer(node.as_integer()->get());
    case toml::node_type::boolean:
      return RawValue::from_boolean(node.as_boolean()->get());
    case toml::node_type::floating_point:
      return RawValue::from_other("a float");
    case toml::node_type::date:
      return RawValue::from_other("a date");
    case toml::node_type::time:
      return RawValue::from_other("a time");
    case toml::node_type::date_time:
      return RawValue::from_other("a date-time");
    case toml::node_type::array:
      return RawValue::from_other("an array");
    case toml::node_type::table:
      return RawValue::from_other("a table");
    case toml::node_type::none:
      break;
  }
  return RawValue::from_other("an empty value");
}

bool is_key_prefix(std::string_view prefix) {
  for (const Key& k : key_table()) {
    if (k.name.size() > prefix.size() && k.name.starts_with(prefix) &&
        k.name[prefix.size()] == '.') {
      return true;
    }
  }
  return false;
}

// Tables become dotted key prefixes. A table is only descended into when keys live below it, so
// `[mqtt.max_inflight]` is reported as a wrong type for that key rather than silently ignored, and
// an unknown empty table is still reported as unknown.
void flatten(const toml::table& table, const std::string& prefix, const std::string& path,
             std::vector<Setting>& out) {
  for (auto&& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (node.is_table() && (is_key_prefix(key) || (!find_key(key) && !node.as_table()->empty()))) {
      flatten(*node.as_table(), key, path, out);
      continue;
    }
    out.push_back({key, raw_value(node), {Origin::Kind::file, location(path, node.source())}});
  }
}

}  // namespace

std::vector<Setting> read_toml_file(const std::string& path, const std::string& selected_by,
                                    std::vector<std::string>& errors) {
  auto cannot_read = [&](const std::string& why) {
    errors.push_back("config: cannot read config file " + path + ": " + why + " (from " +
                     selected_by + ")");
    return std::vector<Setting>{};
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return cannot_read("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return cannot_read(std::strerror(errno));
  std::stringstream content;
  content << in.rdbuf();
  if (in.bad()) return cannot_read(std::strerror(errno));

  toml::table table;
  try {
    table = toml::parse(content.str(), path);
  } catch (const toml::parse_error& e) {
    errors.push_back("config: " + location(path, e.source()) + ": " + std::string(e.description()) +
                     " (from " + selected_by + ")");
    return {};
  }
  std::vector<Setting> out;
  flatten(table, "", path, out);
  return out;
}

}  // namespace meshmq::config::detail
