#include "rc/nodeagent/fake_pod_runtime.h"

#include <gtest/gtest.h>

namespace rc::nodeagent {
namespace {

TEST(FakePodRuntime, LifecycleAndHooks) {
  FakePodRuntime rt;
  rt.AddImage("busybox");
  auto s = rt.RunSandbox({"uid1", "default", "web", ""});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->ip.empty());
  ContainerConfig c;
  c.sandbox_id = s->id;
  c.name = "main";
  c.image = "docker.io/library/busybox:latest";
  auto id = rt.CreateAndStartContainer(c);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(rt.InspectContainer(*id)->kind, ContainerStatusKind::kRunning);
  rt.Exit(*id, 3);
  EXPECT_EQ(rt.InspectContainer(*id)->exit_code, 3);
  EXPECT_EQ(rt.InspectContainer(*id)->reason, "Error");
  c.image = "nginx";
  EXPECT_TRUE(rt.CreateAndStartContainer(c).status().IsNotFound());
  EXPECT_EQ(rt.ListContainers()->size(), 1u);
  EXPECT_TRUE(rt.StopSandbox(s->id).ok());
  EXPECT_TRUE(rt.ListContainers()->empty());
  EXPECT_TRUE(rt.ListSandboxes()->empty());
}

}  // namespace
}  // namespace rc::nodeagent
