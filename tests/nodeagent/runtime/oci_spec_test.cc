#include "oci_spec.h"

#include <gtest/gtest.h>

namespace rc::nodeagent {
namespace {

using V = std::vector<std::string>;

TEST(OciSpec, CommandAndArgsMergeLikeKubernetes) {
  ImageConfig image;
  image.entrypoint = {"/entry"};
  image.cmd = {"default-arg"};
  ContainerConfig c;
  EXPECT_EQ(*ContainerArgv(image, c), (V{"/entry", "default-arg"}));
  c.args = {"a"};
  EXPECT_EQ(*ContainerArgv(image, c), (V{"/entry", "a"}));
  c.command = {"/bin/sh", "-c"};
  EXPECT_EQ(*ContainerArgv(image, c), (V{"/bin/sh", "-c", "a"}));
  c.args.clear();
  EXPECT_EQ(*ContainerArgv(image, c), (V{"/bin/sh", "-c"}));
  ImageConfig empty;
  ContainerConfig none;
  none.name = "x";
  auto r = ContainerArgv(empty, none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(OciSpec, EnvImageThenContainerSameNameWins) {
  ImageConfig image;
  image.env = {"PATH=/bin", "A=1", "B=2"};
  ContainerConfig c;
  c.env = {{"B", "3"}, {"C", "4"}};
  auto env = ContainerEnv(image, c, "pod-a");
  EXPECT_EQ(env, (V{"PATH=/bin", "HOSTNAME=pod-a", "A=1", "B=3", "C=4"}));
}

TEST(OciSpec, SpecJoinsSandboxNamespacesAndSetsLimits) {
  ImageConfig image;
  image.cmd = {"sh"};
  image.working_dir = "/w";
  ContainerConfig c;
  c.memory_limit_bytes = 64 << 20;
  c.cpu_limit_millis = 500;
  OciSpecInput in;
  in.image = &image;
  in.config = &c;
  in.pid_ns = "/proc/1/ns/pid";
  in.net_ns = "/s/ns/net";
  in.cgroups_path = "/rc/s/c";
  auto spec = BuildOciSpec(in);
  ASSERT_TRUE(spec.ok());
  EXPECT_NE(spec->find("\"path\": \"/s/ns/net\""), std::string::npos);
  EXPECT_NE(spec->find("\"cwd\": \"/w\""), std::string::npos);
  EXPECT_NE(spec->find("\"limit\": 67108864"), std::string::npos);
  EXPECT_NE(spec->find("\"quota\": 50000"), std::string::npos);
  in.with_resources = false;
  EXPECT_EQ(BuildOciSpec(in)->find("\"limit\""), std::string::npos);
}

}  // namespace
}  // namespace rc::nodeagent
