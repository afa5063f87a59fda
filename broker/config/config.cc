#include "broker/config/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <exception>

#include "broker/config/keys.h"

#ifndef MESHMQ_VERSION
#define MESHMQ_VERSION "unknown"
#endif

extern char** environ;

namespace meshmq::config {
namespace {

using detail::find_key;
using detail::key_table;
using detail::Origin;
using detail::RawValue;
using detail::Setting;

constexpr std::string_view kEnvPrefix = "MESHMQ_";
constexpr const char* kConfigEnv = "MESHMQ_CONFIG";

// Whether a MESHMQ_* variable is meant as a key, and so must be one. The project's scripts and
// test harness have their own variables (MESHMQ_BIN, MESHMQ_TEST_STAGES, ...) that a broker they
// start inherits; those must not stop it. Every key has a '.', hence "__" in its variable, and a
// variable starting with a section name (MESHMQ_LOG_LEVEL) is a misspelt key too.
bool looks_like_key(std::string_view name) {
  // Read by `meshmq ctl`, which an operator may run from the same shell as a node.
  if (name == "MESHMQ_ADMIN_TOKEN" || name == "MESHMQ_ADMIN_URL") return false;
  std::string_view rest = name.substr(kEnvPrefix.size());
  if (rest.find("__") != std::string_view::npos) return true;
  std::string first_word;
  for (char c : rest.substr(0, rest.find('_'))) {
    first_word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  for (const detail::Key& key : key_table()) {
    if (key.name.substr(0, key.name.find('.')) == first_word) return true;
  }
  return false;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "meshmq";
  return buf;
}

// Inverse of env_name(), for naming the key an unknown variable was probably meant to set.
std::string env_to_key(std::string_view name) {
  name.remove_prefix(kEnvPrefix.size());
  std::string key;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '_' && i + 1 < name.size() && name[i + 1] == '_') {
      key += '.';
      ++i;
    } else {
      key += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    }
  }
  return key;
}

// A suggested key, spelt the way its source spells keys.
std::string spelt_for(Origin::Kind kind, std::string_view key) {
  switch (kind) {
    case Origin::Kind::env:
      return env_name(key);
    case Origin::Kind::flag:
      return "--" + std::string(key);
    case Origin::Kind::file:
      break;
  }
  return std::string(key);
}

std::string unknown_key(std::string_view key, const Origin& origin) {
  std::string msg = "config: " + std::string(key) + ": unknown key (from " + origin.where + ")";
  std::string_view suggestion = detail::closest_key(key);
  if (!suggestion.empty()) msg += "; did you mean " + spelt_for(origin.kind, suggestion) + "?";
  return msg;
}

void apply(const std::vector<Setting>& settings, Config& config, std::vector<std::string>& errors) {
  for (const Setting& s : settings) {
    const detail::Key* key = find_key(s.key);
    if (key == nullptr) {
      errors.push_back(unknown_key(s.key, s.origin));
      continue;
    }
    std::string problem = key->set(config, s.value);
    if (!problem.empty()) {
      errors.push_back("config: " + s.key + ": " + problem + " (from " + s.origin.where + ")");
    }
  }
}

std::vector<Setting> read_env(const GetEnv& getenv, std::span<const std::string> env_names,
                              std::vector<std::string>& errors) {
  std::vector<Setting> out;
  // Known keys are looked up by name, so they work even when the name list is incomplete.
  for (const detail::Key& key : key_table()) {
    std::string name = env_name(key.name);
    if (const char* value = getenv(name.c_str())) {
      out.push_back({std::string(key.name), RawValue::from_text(value), {Origin::Kind::env, name}});
    }
  }
  for (const std::string& name : env_names) {
    if (!name.starts_with(kEnvPrefix) || name == kConfigEnv || !looks_like_key(name)) continue;
    std::string key = env_to_key(name);
    if (env_name(key) == name && find_key(key) != nullptr) continue;  // read above
    if (getenv(name.c_str()) == nullptr) continue;
    Origin origin{Origin::Kind::env, name};
    if (find_key(key) != nullptr) {
      errors.push_back("config: " + key + ": environment variable names are upper case (from " +
                       name + "); did you mean " + env_name(key) + "?");
    } else {
      errors.push_back(unknown_key(key, origin));
    }
  }
  return out;
}

std::string section_of(std::string_view key) {
  return std::string(key.substr(0, key.rfind('.')));
}

// The top-level command. Key options are generated from the table; subcommands (meshmq passwd,
// meshmq ctl) are meant to be added to this app with add_subcommand(), and LoadResult will then
// say which one was chosen.
struct CommandLine {
  CLI::App app{"meshmq: clustered MQTT broker", "meshmq"};
  CLI::Option* config_path = nullptr;
  std::vector<std::pair<const detail::Key*, CLI::Option*>> key_options;

  explicit CommandLine(const Config& defaults) {
    // Unknown arguments are collected rather than rejected by CLI11, so they are reported in the
    // same format, with the same "did you mean", as unknown keys in the file and environment.
    app.allow_extras();
    app.get_formatter()->column_width(36);  // the longest "--key TYPE" fits on its line
    app.set_help_flag("-h,--help", "Print this help and exit");
    app.set_version_flag("--version", std::string("meshmq ") + MESHMQ_VERSION,
                         "Print the version and exit");
    // Descriptions are set with ->description(): add_option(name, std::string) would bind the
    // string as the option's target variable.
    config_path = app.add_option("-c,--config")
                      ->description("TOML config file (env MESHMQ_CONFIG)")
                      ->type_name("PATH")
                      ->expected(0, 1)  // --config= overrides MESHMQ_CONFIG with no file
                      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    for (const detail::Key& key : key_table()) {
      // Defaults and env names go in the description rather than CLI11's default_str: CLI11
      // substitutes default_str as the value of an option given without one, which would turn a
      // bare boolean --flag into its default instead of true.
      std::string description = std::string(key.description) + "\ndefault " + key.show(defaults) +
                                ", env " + env_name(key.name);
      CLI::Option* opt = app.add_option("--" + std::string(key.name))
                             ->description(description)
                             ->type_name(std::string(key.type))
                             ->group(section_of(key.name));
      // A missing or empty value reaches the key's own parser instead of CLI11's generic
      // "1 required missing", so it is reported like an empty env var; a bare boolean is true.
      opt->expected(0, 1)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
      key_options.emplace_back(&key, opt);
    }
    app.footer(
        "Every option is also a config file key and an environment variable, e.g.\n"
        "  --listeners.tcp.port=1884  |  [listeners.tcp] port = 1884  |  "
        "MESHMQ_LISTENERS__TCP__PORT=1884\n"
        "Precedence: defaults < config file < environment < command line.\n"
        "DURATION: seconds, or numbers with unit s, m, h, d (\"90s\", \"15m\", \"1h30m\").\n"
        "SIZE: bytes, or a number with unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (\"64KiB\").\n"
        "BOOL: true/false; environment and flags also take yes/no, on/off, 1/0.");
  }

  std::vector<Setting> settings() const {
    std::vector<Setting> out;
    for (const auto& [key, opt] : key_options) {
      if (opt->count() == 0) continue;
      std::string value = opt->results().empty() ? "" : opt->results().back();
      if (value.empty() && key->is_boolean) value = "true";
      std::string flag = "--" + std::string(key->name);
      out.push_back(
          {std::string(key->name), RawValue::from_text(value), {Origin::Kind::flag, flag}});
    }
    return out;
  }

  void report_extras(std::vector<std::string>& errors) const {
    bool after_unknown_option = false;  // its value, as in "--no.such.key 5"
    for (const std::string& arg : app.remaining()) {
      if (arg.starts_with("--")) {
        std::size_t eq = arg.find('=');
        std::string flag = arg.substr(0, eq);
        errors.push_back(unknown_key(flag.substr(2), {Origin::Kind::flag, flag}));
        after_unknown_option = eq == std::string::npos;
      } else if (arg.starts_with("-") && arg.size() > 1 && !after_unknown_option) {
        errors.push_back("config: " + arg + ": unknown option");
      } else if (!after_unknown_option) {
        errors.push_back("config: unexpected argument " + RawValue::from_text(arg).display());
      } else {
        after_unknown_option = false;
      }
    }
  }
};

std::vector<std::string> process_env_names() {
  std::vector<std::string> names;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with(kEnvPrefix)) names.emplace_back(entry.substr(0, entry.find('=')));
  }
  return names;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += (out.empty() ? "" : "\n") + line;
  return out;
}

LoadResult load_or_throw(int argc, const char* const* argv, const GetEnv& getenv,
                         std::span<const std::string> env_names) {
  LoadResult result;
  Config config = defaults();
  CommandLine cli(config);

  // CLI11 wants the arguments reversed and without the program name.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);
  try {
    cli.app.parse(args);
  } catch (const CLI::CallForHelp&) {
    result.help = cli.app.help();
    return result;
  } catch (const CLI::CallForAllHelp&) {
    result.help = cli.app.help("", CLI::AppFormatMode::All);
    return result;
  } catch (const CLI::CallForVersion& e) {
    result.help = std::string(e.what()) + "\n";
    return result;
  } catch (const CLI::ParseError& e) {
    result.error = "config: " + std::string(e.what()) + " (from command line)";
    return result;
  }

  std::vector<std::string> errors;
  std::vector<Setting> from_file;
  if (cli.config_path->count() > 0) {
    std::string path = cli.config_path->results().back();
    if (!path.empty()) from_file = detail::read_toml_file(path, "--config", errors);
  } else if (const char* path = getenv(kConfigEnv); path != nullptr && *path != '\0') {
    from_file = detail::read_toml_file(path, kConfigEnv, errors);
  }
  std::vector<Setting> from_env = read_env(getenv, env_names, errors);
  cli.report_extras(errors);

  apply(from_file, config, errors);
  apply(from_env, config, errors);
  apply(cli.settings(), config, errors);

  if (!errors.empty()) {
    result.error = join_lines(errors);
    return result;
  }
  result.config = std::move(config);
  return result;
}

}  // namespace

LoadResult load(int argc, const char* const* argv, const GetEnv& getenv,
                std::span<const std::string> env_names) {
  try {
    return load_or_throw(argc, argv, getenv, env_names);
  } catch (const std::exception& e) {
    LoadResult result;
    result.error = std::string("config: ") + e.what();
    return result;
  }
}

LoadResult load(int argc, const char* const* argv, const GetEnv& getenv) {
  std::vector<std::string> names;
  try {
    names = process_env_names();
  } catch (const std::exception& e) {
    LoadResult result;
    result.error = std::string("config: ") + e.what();
    return result;
  }
  return load(argc, argv, getenv, names);
}

Config defaults() {
  Config config;
  config.node.name = host_name();
  return config;
}

std::string describe(const Config& config) {
  std::vector<std::string> lines;
  for (const detail::Key& key : key_table()) {
    lines.push_back(std::string(key.name) + " = " + key.show(config));
  }
  return join_lines(lines);
}

std::string env_name(std::string_view key) {
  std::string out(kEnvPrefix);
  for (char c : key) {
    if (c == '.') {
      out += "__";
    } else {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::vector<KeyInfo> keys() {
  std::vector<KeyInfo> out;
  for (const detail::Key& key : key_table()) out.push_back({key.name, key.type, key.description});
  return out;
}

}  // namespace meshmq::config
