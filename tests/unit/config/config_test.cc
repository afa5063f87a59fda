#include "broker/config/config.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "broker/config/logging.h"

namespace meshmq::config {
namespace {

namespace fs = std::filesystem;

// Runs load() against a fake environment and a per-test temp directory, so tests never read or
// change the real environment and never share files.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("meshmq_config_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& content) {
    fs::path path = dir_ / name;
    std::ofstream(path) << content;
    return path.string();
  }

  LoadResult run(std::vector<std::string> args = {}) {
    args.insert(args.begin(), "meshmq");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::vector<std::string> names;
    for (const auto& [name, value] : env_) names.push_back(name);
    auto getenv = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    return load(static_cast<int>(args.size()), argv.data(), getenv, names);
  }

  // The effective value of `key` as describe() prints it.
  static std::string value_of(const Config& config, const std::string& key) {
    std::istringstream lines(describe(config));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.starts_with(key + " = ")) return line.substr(key.size() + 3);
    }
    ADD_FAILURE() << "describe() has no line for " << key;
    return {};
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsNeedNoArguments) {
  LoadResult r = run();
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.help.empty());
  EXPECT_FALSE(r.exit_requested());
  const Config& c = *r.config;

  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(c.node.name, host);
  EXPECT_EQ(c.node.data_dir, "./data");
  EXPECT_EQ(c.tcp.bind, "0.0.0.0");
  EXPECT_EQ(c.tcp.port, 1883);
  EXPECT_EQ(c.broker.threads, 0u);
  EXPECT_EQ(c.log.level, "info");

  const core::MqttOptions d;
  EXPECT_EQ(c.mqtt.max_packet_size, d.max_packet_size);
  EXPECT_EQ(c.mqtt.max_inflight, d.max_inflight);
  EXPECT_EQ(c.mqtt.max_queued_messages, d.max_queued_messages);
  EXPECT_EQ(c.mqtt.queue_qos0, d.queue_qos0);
  EXPECT_EQ(c.mqtt.session_expiry_s, d.session_expiry_s);
  EXPECT_EQ(c.mqtt.connect_timeout_s, d.connect_timeout_s);
  EXPECT_EQ(c.mqtt.max_outgoing_bytes, d.max_outgoing_bytes);
  EXPECT_EQ(c.mqtt.retained_max_count, d.retained_max_count);
  EXPECT_EQ(c.mqtt.retained_max_age_s, d.retained_max_age_s);
  EXPECT_EQ(c.mqtt.max_keepalive_s, d.max_keepalive_s);
}

TEST_F(ConfigTest, DescribeShowsDefaultsInInputNotation) {
  Config c = defaults();
  const std::map<std::string, std::string> expected = {
      {"node.data_dir", "./data"},
      {"listeners.tcp.bind", "0.0.0.0"},
      {"listeners.tcp.port", "1883"},
      {"listeners.ws.port", "8083"},
      {"listeners.ws.path", "/mqtt"},
      {"listeners.tls.port", "8883"},
      {"listeners.wss.port", "8084"},
      {"tls.cert_file", ""},
      {"tls.min_version", "1.2"},
      {"tls.verify_client", "none"},
      {"tls.cn_as_username", "false"},
      {"broker.threads", "0"},
      {"log.level", "info"},
      {"mqtt.max_packet_size", "1MiB"},
      {"mqtt.max_inflight", "32"},
      {"mqtt.max_queued_messages", "1000"},
      {"mqtt.queue_qos0", "false"},
      {"mqtt.session_expiry", "2h"},
      {"mqtt.connect_timeout", "10s"},
      {"mqtt.max_outgoing_bytes", "1MiB"},
      {"mqtt.retained_max_count", "1000000"},
      {"mqtt.retained_max_age", "0s"},
      {"mqtt.max_keepalive", "0s"},
      {"listeners.tcp.max_connections", "0"},
      {"listeners.tcp.connect_rate", "0"},
      {"auth.allow_anonymous", "true"},
      {"auth.password_file", ""},
      {"auth.acl_file", ""},
      {"auth.acl_default", "allow"},
      {"auth.acl_deny_action", "ignore"},
      {"limits.max_connections", "0"},
      {"limits.max_topic_length", "65535"},
      {"limits.max_topic_levels", "200"},
      {"limits.max_subscriptions_per_client", "10000"},
      {"limits.publish_rate", "0"},
      {"limits.publish_burst", "0"},
  };
  for (const auto& [key, value] : expected) EXPECT_EQ(value_of(c, key), value) << key;

  std::istringstream lines(describe(c));
  std::string line;
  std::size_t n = 0;
  for (; std::getline(lines, line); ++n) {
    ASSERT_LT(n, keys().size());
    EXPECT_TRUE(line.starts_with(std::string(keys()[n].name) + " = ")) << line;
  }
  EXPECT_EQ(n, keys().size());
  EXPECT_FALSE(describe(c).ends_with('\n'));
}

TEST_F(ConfigTest, ProcessEnvironmentOverloadUsesOnlyTheGivenGetenv) {
  const char* argv[] = {"meshmq", nullptr};
  LoadResult r = load(1, argv, [](const char*) -> const char* { return nullptr; });
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1883);

  r = load(1, argv, [](const char* name) -> const char* {
    return std::string_view(name) == "MESHMQ_LISTENERS__TCP__PORT" ? "1999" : nullptr;
  });
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1999);
}

TEST_F(ConfigTest, NoArgvAtAll) {
  const char* argv[] = {nullptr};
  LoadResult r = load(0, argv, [](const char*) -> const char* { return nullptr; });
  EXPECT_TRUE(r.config) << r.error;
}

// A text value (as env and flags give it) and the value describe() then shows.
struct GoodText {
  std::string key;
  std::string input;
  std::string shown;
};

const std::vector<GoodText> kGoodText = {
    {"listeners.tcp.port", "1884", "1884"},
    {"listeners.tcp.port", "0", "0"},
    {"listeners.tcp.port", "65535", "65535"},
    {"listeners.tcp.port", " 8883 ", "8883"},
    {"listeners.tcp.bind", "127.0.0.1", "127.0.0.1"},
    {"listeners.tcp.bind", "::", "::"},
    {"listeners.tcp.bind", "fe80::1", "fe80::1"},
    {"listeners.ws.path", "/", "/"},
    {"listeners.ws.path", "/ws/mqtt", "/ws/mqtt"},
    {"tls.min_version", "1.3", "1.3"},
    {"tls.verify_client", "required", "required"},
    {"tls.cn_as_username", "yes", "true"},
    {"node.name", "node-1.example_a", "node-1.example_a"},
    {"node.data_dir", "/var/lib/meshmq data", "/var/lib/meshmq data"},
    {"broker.threads", "8", "8"},
    {"broker.threads", "0", "0"},
    {"log.level", "trace", "trace"},
    {"log.level", "off", "off"},
    {"mqtt.max_inflight", "1", "1"},
    {"mqtt.max_inflight", "65535", "65535"},
    {"mqtt.max_queued_messages", "0", "0"},
    {"mqtt.max_queued_messages", "4294967295", "4294967295"},
    {"mqtt.retained_max_count", "0", "0"},
    // durations
    {"mqtt.session_expiry", "90", "90s"},
    {"mqtt.session_expiry", "90s", "90s"},
    {"mqtt.session_expiry", "15m", "15m"},
    {"mqtt.session_expiry", "2h", "2h"},
    {"mqtt.session_expiry", "7d", "7d"},
    {"mqtt.session_expiry", "120m", "2h"},
    {"mqtt.session_expiry", "1h30m", "90m"},
    {"mqtt.session_expiry", "1d2h3m4s", "93784s"},
    {"mqtt.session_expiry", "0", "0s"},
    {"mqtt.session_expiry", "4294967295", "4294967295s"},
    {"mqtt.connect_timeout", "1h", "1h"},
    {"mqtt.retained_max_age", "30d", "30d"},
    {"mqtt.max_keepalive", "65535", "65535s"},
    {"mqtt.max_keepalive", "18h", "18h"},
    // sizes
    {"mqtt.max_packet_size", "2", "2"},
    {"mqtt.max_packet_size", "64KiB", "64KiB"},
    {"mqtt.max_packet_size", "1MiB", "1MiB"},
    {"mqtt.max_packet_size", "1048576", "1MiB"},
    {"mqtt.max_packet_size", "512KB", "500KiB"},
    {"mqtt.max_packet_size", "1000", "1000"},
    {"mqtt.max_packet_size", "1000B", "1000"},
    {"mqtt.max_packet_size", "1 mib", "1MiB"},
    {"mqtt.max_packet_size", "268435455", "268435455"},
    {"mqtt.max_outgoing_bytes", "1GiB", "1GiB"},
    {"mqtt.max_outgoing_bytes", "1GB", "1000000000"},
    {"mqtt.max_outgoing_bytes", "2TiB", "2TiB"},
    // booleans
    {"mqtt.queue_qos0", "true", "true"},
    {"mqtt.queue_qos0", "TRUE", "true"},
    {"mqtt.queue_qos0", "yes", "true"},
    {"mqtt.queue_qos0", "on", "true"},
    {"mqtt.queue_qos0", "1", "true"},
    {"mqtt.queue_qos0", "false", "false"},
    {"mqtt.queue_qos0", "no", "false"},
    {"mqtt.queue_qos0", "off", "false"},
    {"mqtt.queue_qos0", "0", "false"},
};

TEST_F(ConfigTest, TextValuesFromEnvAndFlags) {
  for (const auto& c : kGoodText) {
    SCOPED_TRACE(c.key + " <- \"" + c.input + "\"");
    env_ = {{env_name(c.key), c.input}};
    LoadResult r = run();
    ASSERT_TRUE(r.config) << r.error;
    EXPECT_EQ(value_of(*r.config, c.key), c.shown) << "from env";

    env_.clear();
    r = run({"--" + c.key + "=" + c.input});
    ASSERT_TRUE(r.config) << r.error;
    EXPECT_EQ(value_of(*r.config, c.key), c.shown) << "from --key=value";

    r = run({"--" + c.key, c.input});
    ASSERT_TRUE(r.config) << r.error;
    EXPECT_EQ(value_of(*r.config, c.key), c.shown) << "from --key value";
  }
}

// A bad text value and the problem text load() must report for it.
struct BadText {
  std::string key;
  std::string input;
  std::string problem;
};

const std::vector<BadText> kBadText = {
    {"listeners.tcp.port", "abc", R"("abc" is not a port number)"},
    {"listeners.ws.path", "mqtt",
     R"("mqtt" is not an HTTP path (starts with '/', no spaces, '?' or '#'))"},
    {"listeners.ws.path", "/a b",
     R"("/a b" is not an HTTP path (starts with '/', no spaces, '?' or '#'))"},
    {"tls.min_version", "1.1", R"("1.1" is not one of 1.2, 1.3)"},
    {"tls.verify_client", "yes", R"("yes" is not one of none, optional, required)"},
    {"listeners.tcp.port", "", R"("" is not a port number)"},
    {"listeners.tcp.port", "12ab", R"("12ab" is not a port number)"},
    {"listeners.tcp.port", "70000", R"("70000" is out of range: must be between 0 and 65535)"},
    {"listeners.tcp.port", "-1", R"("-1" is out of range: must be between 0 and 65535)"},
    {"listeners.tcp.port", "99999999999999999999999",
     R"("99999999999999999999999" is out of range: must be between 0 and 65535)"},
    {"listeners.tcp.bind", "localhost",
     R"("localhost" is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::))"},
    {"node.name", "my node",
     R"("my node" is not a valid node name (1 to 253 letters, digits, '.', '-' or '_'))"},
    {"node.name", "", R"("" is not a valid node name)"},
    {"node.data_dir", "", R"("" is not a path (empty))"},
    {"broker.threads", "5000", R"("5000" is out of range: must be between 0 and 1024)"},
    {"log.level", "verbose", R"("verbose" is not one of trace, debug, info, warn, error, off)"},
    {"log.level", "INFO", R"("INFO" is not one of)"},
    {"mqtt.max_inflight", "0", R"("0" is out of range: must be between 1 and 65535)"},
    {"mqtt.max_inflight", "65536", R"("65536" is out of range: must be between 1 and 65535)"},
    {"mqtt.max_queued_messages", "4294967296",
     R"("4294967296" is out of range: must be between 0 and 4294967295)"},
    {"mqtt.max_packet_size", "1", R"("1" is out of range: must be between 2 and 268435455)"},
    {"mqtt.max_packet_size", "256MiB",
     R"("256MiB" is out of range: must be between 2 and 268435455)"},
    {"mqtt.max_packet_size", "12XB",
     R"("12XB" is not a size (bytes, or a number with unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, e.g. "64KiB"))"},
    {"mqtt.max_packet_size", "KiB", R"("KiB" is not a size)"},
    {"mqtt.max_packet_size", "1.5MiB", R"("1.5MiB" is not a size)"},
    {"mqtt.max_packet_size", "-5", R"("-5" is not a size)"},
    {"mqtt.max_outgoing_bytes", "0", R"("0" is out of range: must be between 1 and)"},
    {"mqtt.max_outgoing_bytes", "99999999TiB", R"("99999999TiB" is out of range)"},
    {"mqtt.session_expiry", "5x",
     R"("5x" is not a duration (seconds, or numbers with unit s, m, h, d, e.g. "90s", "15m", "1h30m", "7d"))"},
    {"mqtt.session_expiry", "1h30", R"("1h30" is not a duration)"},
    {"mqtt.session_expiry", "h", R"("h" is not a duration)"},
    {"mqtt.session_expiry", "", R"("" is not a duration)"},
    {"mqtt.session_expiry", "90 s", R"("90 s" is not a duration)"},
    {"mqtt.session_expiry", "50000d",
     R"("50000d" is out of range: must be between 0s and 4294967295s)"},
    {"mqtt.session_expiry", "99999999999999999999", R"("99999999999999999999" is out of range)"},
    {"mqtt.connect_timeout", "0", R"("0" is out of range: must be between 1s and 1h)"},
    {"mqtt.max_keepalive", "19h", R"("19h" is out of range: must be between 0s and 65535s)"},
    {"mqtt.queue_qos0", "maybe", R"("maybe" is not a boolean (true/false, yes/no, on/off, 1/0))"},
    {"mqtt.queue_qos0", "2", R"("2" is not a boolean)"},
};

TEST_F(ConfigTest, BadTextValuesNameKeyAndSource) {
  for (const auto& c : kBadText) {
    SCOPED_TRACE(c.key + " <- \"" + c.input + "\"");
    const std::string env = env_name(c.key);
    env_ = {{env, c.input}};
    LoadResult r = run();
    EXPECT_FALSE(r.config);
    EXPECT_TRUE(r.error.starts_with("config: " + c.key + ": " + c.problem)) << r.error;
    EXPECT_TRUE(r.error.ends_with("(from " + env + ")")) << r.error;

    env_.clear();
    r = run({"--" + c.key + "=" + c.input});
    EXPECT_FALSE(r.config);
    EXPECT_TRUE(r.error.starts_with("config: " + c.key + ": " + c.problem)) << r.error;
    EXPECT_TRUE(r.error.ends_with("(from --" + c.key + ")")) << r.error;
  }
}

TEST_F(ConfigTest, ErrorMessageMatchesTheDocumentedExample) {
  env_ = {{"MESHMQ_LISTENERS__TCP__PORT", "abc"}};
  EXPECT_EQ(
      run().error,
      R"(config: listeners.tcp.port: "abc" is not a port number (from MESHMQ_LISTENERS__TCP__PORT))");
}

TEST_F(ConfigTest, BareBooleanFlagMeansTrue) {
  LoadResult r = run({"--mqtt.queue_qos0"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.config->mqtt.queue_qos0);

  r = run({"--mqtt.queue_qos0", "--listeners.tcp.port=1"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.config->mqtt.queue_qos0);
  EXPECT_EQ(r.config->tcp.port, 1);

  env_ = {{"MESHMQ_MQTT__QUEUE_QOS0", "yes"}};
  r = run({"--mqtt.queue_qos0", "false"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_FALSE(r.config->mqtt.queue_qos0);
}

TEST_F(ConfigTest, LastFlagWins) {
  LoadResult r = run({"--listeners.tcp.port=1", "--listeners.tcp.port", "2"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 2);
}

TEST_F(ConfigTest, FlagWithoutValue) {
  LoadResult r = run({"--listeners.tcp.port"});
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.error,
            R"(config: listeners.tcp.port: "" is not a port number (from --listeners.tcp.port))");

  r = run({"--listeners.tcp.port", "--broker.threads=2"});
  EXPECT_EQ(r.error,
            R"(config: listeners.tcp.port: "" is not a port number (from --listeners.tcp.port))");
}

TEST_F(ConfigTest, FileValuesAndTypes) {
  std::string path = write_file("meshmq.toml", R"(
[node]
name = "alpha"
data_dir = "/srv/meshmq"

[listeners.tcp]
bind = "::"
port = 1884

[broker]
threads = 4

[log]
level = "debug"

[mqtt]
max_packet_size = "64KiB"
max_inflight = 100
max_queued_messages = 5000
queue_qos0 = true
session_expiry = "1d"
connect_timeout = 30
max_outgoing_bytes = 65536
retained_max_count = 0
retained_max_age = "12h"
max_keepalive = "10m"
)");
  LoadResult r = run({"--config", path});
  ASSERT_TRUE(r.config) << r.error;
  const Config& c = *r.config;
  EXPECT_EQ(c.node.name, "alpha");
  EXPECT_EQ(c.node.data_dir, "/srv/meshmq");
  EXPECT_EQ(c.tcp.bind, "::");
  EXPECT_EQ(c.tcp.port, 1884);
  EXPECT_EQ(c.broker.threads, 4u);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.mqtt.max_packet_size, 64u * 1024);
  EXPECT_EQ(c.mqtt.max_inflight, 100u);
  EXPECT_EQ(c.mqtt.max_queued_messages, 5000u);
  EXPECT_TRUE(c.mqtt.queue_qos0);
  EXPECT_EQ(c.mqtt.session_expiry_s, 86400u);
  EXPECT_EQ(c.mqtt.connect_timeout_s, 30u);
  EXPECT_EQ(c.mqtt.max_outgoing_bytes, 65536u);
  EXPECT_EQ(c.mqtt.retained_max_count, 0u);
  EXPECT_EQ(c.mqtt.retained_max_age_s, 12u * 3600);
  EXPECT_EQ(c.mqtt.max_keepalive_s, 600u);
}

TEST_F(ConfigTest, DottedAndInlineTablesAreTheSameKeys) {
  std::string path = write_file("dotted.toml",
                                "listeners.tcp.port = 1001\n"
                                "mqtt = { max_inflight = 7 }\n");
  LoadResult r = run({"--config=" + path});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1001);
  EXPECT_EQ(r.config->mqtt.max_inflight, 7u);
}

// A file line and the problem reported for it; the value sits on line 2, column 7 or 8.
struct BadFile {
  std::string content;
  std::string message;  // with PATH standing for the file's path
};

const std::vector<BadFile> kBadFile = {
    {"[listeners.tcp]\nport = \"abc\"\n",
     R"(config: listeners.tcp.port: expected a port number, got the string "abc" (from PATH:2:8))"},
    {"[listeners.tcp]\nport = \"1884\"\n",
     R"(config: listeners.tcp.port: expected a port number, got the string "1884" (from PATH:2:8))"},
    {"[listeners.tcp]\nport = 70000\n",
     "config: listeners.tcp.port: 70000 is out of range: must be between 0 and 65535 (from "
     "PATH:2:8)"},
    {"[listeners.tcp]\nport = -1\n",
     "config: listeners.tcp.port: -1 is out of range: must be between 0 and 65535 (from PATH:2:8)"},
    {"[listeners.tcp]\nport = 1.5\n",
     "config: listeners.tcp.port: expected a port number, got a float (from PATH:2:8)"},
    {"[mqtt]\nqueue_qos0 = \"yes\"\n",
     R"(config: mqtt.queue_qos0: expected a boolean, got the string "yes" (from PATH:2:14))"},
    {"[mqtt]\nqueue_qos0 = 1\n",
     "config: mqtt.queue_qos0: expected a boolean, got the integer 1 (from PATH:2:14)"},
    {"[mqtt]\nsession_expiry = \"5x\"\n",
     R"(config: mqtt.session_expiry: "5x" is not a duration (seconds, or numbers with unit s, m, h, d, e.g. "90s", "15m", "1h30m", "7d") (from PATH:2:18))"},
    {"[mqtt]\nsession_expiry = true\n",
     "config: mqtt.session_expiry: expected a duration, got the boolean true (from PATH:2:18)"},
    {"[mqtt]\nmax_packet_size = [1]\n",
     "config: mqtt.max_packet_size: expected a size, got an array (from PATH:2:19)"},
    {"[node]\nname = 5\n",
     "config: node.name: expected a string, got the integer 5 (from PATH:2:8)"},
    {"[log]\nlevel = \"loud\"\n",
     R"(config: log.level: "loud" is not one of trace, debug, info, warn, error, off (from PATH:2:9))"},
    {"[mqtt.max_inflight]\nx = 1\n",
     "config: mqtt.max_inflight: expected an integer, got a table (from PATH:1:1)"},
};

TEST_F(ConfigTest, BadFileValuesNamePathAndLine) {
  for (std::size_t i = 0; i < kBadFile.size(); ++i) {
    const auto& c = kBadFile[i];
    SCOPED_TRACE(c.content);
    std::string path = write_file("bad" + std::to_string(i) + ".toml", c.content);
    LoadResult r = run({"--config", path});
    EXPECT_FALSE(r.config);
    std::string expected = c.message;
    expected.replace(expected.find("PATH"), 4, path);
    EXPECT_EQ(r.error, expected);
  }
}

TEST_F(ConfigTest, SyntaxErrorNamesPathAndLine) {
  std::string path = write_file("syntax.toml", "[listeners.tcp]\nport = = 1883\n");
  LoadResult r = run({"--config", path});
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.starts_with("config: " + path + ":2:")) << r.error;
  EXPECT_TRUE(r.error.ends_with("(from --config)")) << r.error;

  env_ = {{"MESHMQ_CONFIG", path}};
  r = run();
  EXPECT_TRUE(r.error.starts_with("config: " + path + ":2:")) << r.error;
  EXPECT_TRUE(r.error.ends_with("(from MESHMQ_CONFIG)")) << r.error;
}

TEST_F(ConfigTest, UnreadableFile) {
  std::string missing = (dir_ / "missing.toml").string();
  env_ = {{"MESHMQ_CONFIG", missing}};
  LoadResult r = run();
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.error, "config: cannot read config file " + missing +
                         ": No such file or directory (from MESHMQ_CONFIG)");

  r = run({"--config", dir_.string()});
  EXPECT_EQ(r.error, "config: cannot read config file " + dir_.string() +
                         ": is a directory (from --config)");
}

TEST_F(ConfigTest, ConfigFlagBeatsConfigEnvAndEmptyFlagMeansNoFile) {
  std::string from_env = write_file("env.toml", "listeners.tcp.port = 1001\n");
  std::string from_flag = write_file("flag.toml", "listeners.tcp.port = 1002\n");
  env_ = {{"MESHMQ_CONFIG", from_env}};

  LoadResult r = run();
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1001);

  r = run({"--config", from_flag});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1002);

  r = run({"-c", from_flag});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1002);

  r = run({"--config="});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->tcp.port, 1883);
}

TEST_F(ConfigTest, PrecedenceDefaultsFileEnvFlags) {
  std::string path = write_file("p.toml", "[mqtt]\nsession_expiry = \"1h\"\n");
  struct Case {
    bool file, env, flag;
    std::uint32_t expected;
  };
  const Case cases[] = {
      {false, false, false, 7200}, {true, false, false, 3600}, {false, true, false, 60},
      {true, true, false, 60},     {false, false, true, 5},    {true, false, true, 5},
      {false, true, true, 5},      {true, true, true, 5},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "file=" << c.file << " env=" << c.env << " flag=" << c.flag);
    env_.clear();
    std::vector<std::string> args;
    if (c.file) args = {"--config", path};
    if (c.env) env_["MESHMQ_MQTT__SESSION_EXPIRY"] = "1m";
    if (c.flag) args.push_back("--mqtt.session_expiry=5s");
    LoadResult r = run(args);
    ASSERT_TRUE(r.config) << r.error;
    EXPECT_EQ(r.config->mqtt.session_expiry_s, c.expected);
  }
}

TEST_F(ConfigTest, UnknownKeyInFile) {
  std::string path = write_file("unknown.toml", "[listeners.tcp]\nprot = 1883\n\n[nosuch]\n");
  LoadResult r = run({"--config", path});
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.error, "config: listeners.tcp.prot: unknown key (from " + path +
                         ":2:8); did you mean listeners.tcp.port?\n"
                         "config: nosuch: unknown key (from " +
                         path + ":4:1)");
}

TEST_F(ConfigTest, UnknownEnvVariables) {
  struct Case {
    std::string name;
    std::string message;
  };
  const Case cases[] = {
      {"MESHMQ_LISTENERS__TCP__PROT",
       "config: listeners.tcp.prot: unknown key (from MESHMQ_LISTENERS__TCP__PROT); did you mean "
       "MESHMQ_LISTENERS__TCP__PORT?"},
      {"MESHMQ_LISTENERS_TCP_PORT",
       "config: listeners_tcp_port: unknown key (from MESHMQ_LISTENERS_TCP_PORT); did you mean "
       "MESHMQ_LISTENERS__TCP__PORT?"},
      {"MESHMQ_LOG_LEVEL",
       "config: log_level: unknown key (from MESHMQ_LOG_LEVEL); did you mean MESHMQ_LOG__LEVEL?"},
      {"MESHMQ_MQTT_INFLIGHT",
       "config: mqtt_inflight: unknown key (from MESHMQ_MQTT_INFLIGHT); did you mean "
       "MESHMQ_MQTT__MAX_INFLIGHT?"},
      {"MESHMQ_COMPLETELY__DIFFERENT",
       "config: completely.different: unknown key (from MESHMQ_COMPLETELY__DIFFERENT)"},
      {"MESHMQ_log__level",
       "config: log.level: environment variable names are upper case (from MESHMQ_log__level); "
       "did you mean MESHMQ_LOG__LEVEL?"},
  };
  for (const Case& c : cases) {
    env_ = {{c.name, "1"}};
    LoadResult r = run();
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.error, c.message);
  }
}

TEST_F(ConfigTest, NonKeyEnvVariablesAreIgnored) {
  std::string path = write_file("empty.toml", "");
  env_ = {{"MESHMQ_CONFIG", path},
          {"MESHMQ_TEST_STAGES", "release asan"},
          {"MESHMQ_BIN", "/usr/bin/meshmq"},
          {"MESHMQ_ADMIN_TOKEN", "for meshmq ctl"},
          {"MESHMQ_ADMIN_URL", "http://127.0.0.1:8080"},
          {"MESHMQ_", "x"},
          {"MESHMQPORT", "1"},
          {"OTHER_LISTENERS__TCP__PORT", "1"}};
  LoadResult r = run();
  EXPECT_TRUE(r.config) << r.error;
}

TEST_F(ConfigTest, UnknownFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"--listeners.tcp.prot=1"},
       "config: listeners.tcp.prot: unknown key (from --listeners.tcp.prot); did you mean "
       "--listeners.tcp.port?"},
      {{"--mqtt.max_inflights", "5"},
       "config: mqtt.max_inflights: unknown key (from --mqtt.max_inflights); did you mean "
       "--mqtt.max_inflight?"},
      {{"--bogus"}, "config: bogus: unknown key (from --bogus)"},
      {{"-x"}, "config: -x: unknown option"},
      {{"stray"}, R"(config: unexpected argument "stray")"},
  };
  for (const Case& c : cases) {
    LoadResult r = run(c.args);
    EXPECT_FALSE(r.config);
    EXPECT_EQ(r.error, c.message);
  }
}

TEST_F(ConfigTest, AllProblemsAreReportedTogether) {
  std::string path = write_file("two.toml", "[mqtt]\nmax_inflight = 0\n");
  env_ = {{"MESHMQ_LOG__LEVEL", "loud"}};
  LoadResult r = run({"--config", path, "--listeners.tcp.port=x"});
  EXPECT_FALSE(r.config);
  EXPECT_EQ(std::count(r.error.begin(), r.error.end(), '\n'), 2) << r.error;
  EXPECT_NE(r.error.find("config: mqtt.max_inflight:"), std::string::npos);
  EXPECT_NE(r.error.find("config: log.level:"), std::string::npos);
  EXPECT_NE(r.error.find("config: listeners.tcp.port:"), std::string::npos);
}

TEST_F(ConfigTest, HelpListsEveryKeyWithEnvNameAndDefault) {
  LoadResult r = run({"--help"});
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.exit_requested());
  EXPECT_TRUE(r.error.empty());
  for (const KeyInfo& key : keys()) {
    EXPECT_NE(r.help.find("--" + std::string(key.name) + " " + std::string(key.type)),
              std::string::npos)
        << key.name;
    EXPECT_NE(r.help.find(env_name(key.name)), std::string::npos) << key.name;
    EXPECT_NE(r.help.find(std::string(key.description)), std::string::npos) << key.name;
  }
  for (const char* s : {"--config", "--version", "default 1883", "default 2h", "default 1MiB"}) {
    EXPECT_NE(r.help.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(run({"-h"}).help, r.help);
  // Help wins over other problems so that a broken command line can still ask for it.
  EXPECT_EQ(run({"--listeners.tcp.port=x", "--help"}).help, r.help);
}

TEST_F(ConfigTest, Version) {
  LoadResult r = run({"--version"});
  EXPECT_FALSE(r.config);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.help.starts_with("meshmq ")) << r.help;
}

TEST_F(ConfigTest, EnvNameMapping) {
  const std::pair<std::string, std::string> cases[] = {
      {"listeners.tcp.port", "MESHMQ_LISTENERS__TCP__PORT"},
      {"node.data_dir", "MESHMQ_NODE__DATA_DIR"},
      {"mqtt.max_inflight", "MESHMQ_MQTT__MAX_INFLIGHT"},
      {"log.level", "MESHMQ_LOG__LEVEL"},
  };
  for (const auto& [key, env] : cases) EXPECT_EQ(env_name(key), env);

  std::set<std::string> seen;
  for (const KeyInfo& key : keys()) {
    EXPECT_TRUE(seen.insert(env_name(key.name)).second) << "duplicate env name for " << key.name;
  }
}

// Whatever describe() prints must load back unchanged, from every source, for every key.
TEST_F(ConfigTest, EveryKeyRoundTripsThroughEnvFlagsAndFile) {
  Config base = defaults();
  base.mqtt.queue_qos0 = true;  // differ from the "false" default so a no-op would show
  const std::string expected = describe(base);
  std::vector<std::string> flags;
  std::string toml;
  env_.clear();
  for (const KeyInfo& key : keys()) {
    std::string value = value_of(base, std::string(key.name));
    env_[env_name(key.name)] = value;
    flags.push_back("--" + std::string(key.name) + "=" + value);
    bool bare = key.type == "BOOL" || key.type == "UINT" || key.type == "PORT";
    toml += std::string(key.name) + " = " + (bare ? value : "\"" + value + "\"") + "\n";
  }
  LoadResult r = run();
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(describe(*r.config), expected);

  std::map<std::string, std::string> saved;
  std::swap(saved, env_);
  r = run(flags);
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(describe(*r.config), expected);

  r = run({"--config", write_file("all.toml", toml)});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(describe(*r.config), expected);
}

TEST(Logging, LineFormatIsUtcLevelComponentMessage) {
  setup_logging("debug");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::debug);
  testing::internal::CaptureStderr();
  spdlog::warn("hello {}", 1);
  logger("cluster")->debug("joined");
  spdlog::trace("not shown");
  std::string out = testing::internal::GetCapturedStderr();
  std::regex line(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn \[node\] hello 1
\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z debug \[cluster\] joined
)");
  EXPECT_TRUE(std::regex_match(out, line)) << out;

  setup_logging("off");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::off);
  setup_logging("info");
  EXPECT_EQ(logger("cluster")->level(), spdlog::level::info);
}

}  // namespace
}  // namespace meshmq::config
