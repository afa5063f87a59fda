// Internal to broker/config: the key table and the source-neutral form of a value.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config/config.h"

namespace meshmq::config::detail {

// A value before it is checked against its key's type. The file gives typed values; environment
// and flags give untyped text, which is parsed more leniently (e.g. "yes" for a boolean, "1883"
// for an integer) because there is no other way to write those values there.
struct RawValue {
  enum class Kind { text, string, integer, boolean, other };
  Kind kind = Kind::text;
  std::string text;          // text, string; for other: the TOML type, e.g. "an array"
  std::int64_t integer = 0;  // integer
  bool boolean = false;      // boolean

  static RawValue from_text(std::string s) { return {Kind::text, std::move(s)}; }
  static RawValue from_string(std::string s) { return {Kind::string, std::move(s)}; }
  static RawValue from_integer(std::int64_t i) { return {Kind::integer, {}, i}; }
  static RawValue from_boolean(bool b) { return {Kind::boolean, {}, 0, b}; }
  static RawValue from_other(std::string type) { return {Kind::other, std::move(type)}; }

  // As quoted in error messages: strings quoted, integers and booleans bare.
  std::string display() const;
};

struct Key {
  std::string_view name;
  std::string_view type;
  std::string_view description;
  // Current value in the same notation the parser accepts ("2h", "1MiB", "true").
  std::function<std::string(const Config&)> show;
  // Stores the value into the config, or returns what is wrong with it (config left unchanged).
  std::function<std::string(Config&, const RawValue&)> set;
  bool is_boolean = false;  // a bare --flag means true
};

// Where a value came from, for error messages and for naming suggestions in that source's style.
struct Origin {
  enum class Kind { file, env, flag };
  Kind kind = Kind::file;
  std::string where;  // "path:line:column", the env var name, or "--key"
};

struct Setting {
  std::string key;
  RawValue value;
  Origin origin;
};

// Settings from a TOML file, in file order. Unreadable files and syntax errors are appended to
// `errors`; `selected_by` names what chose the file ("--config" or "MESHMQ_CONFIG").
std::vector<Setting> read_toml_file(const std::string& path, const std::string& selected_by,
                                    std::vector<std::string>& errors);

const std::vector<Key>& key_table();
const Key* find_key(std::string_view name);

// Closest key name within a small edit distance, for "did you mean" hints; empty if none.
std::string_view closest_key(std::string_view name);

}  // namespace meshmq::config::detail
