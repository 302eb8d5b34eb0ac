// CniDriver against recording plugins (shell scripts in a temp bin dir): the stdin config each
// plugin gets (name, cniVersion, prevResult, runtimeConfig from the capability args it
// declares), the environment, the order of ADD and DEL.
#include "rc/nodeagent/cni.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace rc::nodeagent {
namespace {

namespace fs = std::filesystem;

class CniDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under the build tree, not /tmp: the plugin scripts must be executable (/tmp may be noexec).
    dir_ = fs::current_path() / ("rc-cni-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "bin");
    fs::create_directories(dir_ / "conf");
    fs::create_directories(dir_ / "log");
    // Each plugin appends "<type> <command> ..." to the order file, keeps its stdin, and answers
    // ADD with one address.
    for (const char* type : {"ipam-like", "portmap-like"}) {
      std::ofstream f(dir_ / "bin" / type);
      f << "#!/bin/sh\n"
        << "in=$(cat)\n"
        << "echo \"" << type << " $CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME\" >> " << (dir_ / "log" / "order").string() << "\n"
        << "printf '%s' \"$in\" > " << (dir_ / "log").string() << "/" << type << "-$CNI_COMMAND.json\n"
        << "[ \"$CNI_COMMAND\" = ADD ] || exit 0\n"
        << "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.2.3/24\",\"gateway\":\"10.1.2.1\"}]}'\n";
      f.close();
      fs::permissions(dir_ / "bin" / type, fs::perms::owner_all);
    }
    std::ofstream(dir_ / "conf" / "10-test.conflist")
        << R"({"cniVersion":"1.0.0","name":"testnet","plugins":[)"
        << R"({"type":"ipam-like","runtimeConfig":{"stale":true}},)"
        << R"({"type":"portmap-like","capabilities":{"portMappings":true,"bandwidth":false},"snat":true}]})";
  }
  void TearDown() override { fs::remove_all(dir_); }
  CniDriver Driver() {
    CniOptions o;
    o.bin_dirs = {(dir_ / "bin").string()};
    o.conf_dir = (dir_ / "conf").string();
    return CniDriver(o);
  }
  rapidjson::Document Stdin(const std::string& file) {
    std::ifstream in(dir_ / "log" / file);
    std::stringstream ss;
    ss << in.rdbuf();
    rapidjson::Document d;
    d.Parse(ss.str().c_str());
    EXPECT_FALSE(d.HasParseError()) << file << ": " << ss.str();
    return d;
  }
  std::string Order() {
    std::ifstream in(dir_ / "log" / "order");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

TEST_F(CniDriverTest, CapabilityArgsGoOnlyToPluginsThatDeclareThem) {
  CniInvocation inv;
  inv.container_id = "sb1";
  inv.netns_path = "/proc/self/ns/net";
  inv.capability_args = R"({"portMappings":[{"hostPort":18081,"containerPort":8080,"protocol":"tcp"}],"bandwidth":{"x":1}})";
  auto r = Driver().Add(inv);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ip, "10.1.2.3");
  EXPECT_EQ(r->gateway, "10.1.2.1");
  auto first = Stdin("ipam-like-ADD.json");
  EXPECT_STREQ(first["name"].GetString(), "testnet");
  EXPECT_STREQ(first["cniVersion"].GetString(), "1.0.0");
  EXPECT_FALSE(first.HasMember("runtimeConfig"));  // declares nothing; a runtimeConfig in the file is dropped
  EXPECT_FALSE(first.HasMember("prevResult"));
  auto second = Stdin("portmap-like-ADD.json");
  ASSERT_TRUE(second.HasMember("runtimeConfig"));
  ASSERT_TRUE(second["runtimeConfig"].HasMember("portMappings"));
  EXPECT_EQ(second["runtimeConfig"]["portMappings"][0]["hostPort"].GetInt(), 18081);
  EXPECT_FALSE(second["runtimeConfig"].HasMember("bandwidth"));  // declared false
  EXPECT_TRUE(second.HasMember("prevResult"));
  EXPECT_TRUE(second["snat"].GetBool());
  ASSERT_TRUE(Driver().Del(inv, r->json).ok());
  auto del = Stdin("portmap-like-DEL.json");
  EXPECT_EQ(del["runtimeConfig"]["portMappings"][0]["containerPort"].GetInt(), 8080);
  EXPECT_EQ(Order(),
            "ipam-like ADD sb1 eth0\nportmap-like ADD sb1 eth0\nportmap-like DEL sb1 eth0\nipam-like DEL sb1 eth0\n");
}

TEST_F(CniDriverTest, NoCapabilityArgsNoRuntimeConfig) {
  CniInvocation inv;
  inv.container_id = "sb2";
  inv.netns_path = "/proc/self/ns/net";
  ASSERT_TRUE(Driver().Add(inv).ok());
  EXPECT_FALSE(Stdin("portmap-like-ADD.json").HasMember("runtimeConfig"));
  inv.capability_args = "[not json";
  auto bad = Driver().Add(inv);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("capability args"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace rc::nodeagent
