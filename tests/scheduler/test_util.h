// Small JSON fixtures for the scheduler's unit tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "rc/scheduler/algorithm.h"
#include "rc/scheduler/cache.h"
#include "rc/scheduler/types.h"

namespace rc::scheduler::testing {

// A pod: `spec` is the spec object's members after containers (may be empty); `containers` the
// containers array; `meta` extra metadata members.
inline std::string PodJson(const std::string& name, const std::string& containers = R"([{"name":"c"}])",
                           const std::string& spec = "", const std::string& meta = "") {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name + R"(","namespace":"default","uid":"uid-)" +
         name + "\"" + (meta.empty() ? "" : "," + meta) + R"(},"spec":{"containers":)" + containers +
         (spec.empty() ? "" : "," + spec) + "}}";
}

// A container asking for cpu/memory ("" = not requested).
inline std::string Requests(const std::string& cpu, const std::string& memory) {
  std::string r;
  if (!cpu.empty()) r += R"("cpu":")" + cpu + "\"";
  if (!memory.empty()) r += std::string(r.empty() ? "" : ",") + R"("memory":")" + memory + "\"";
  return R"([{"name":"c","resources":{"requests":{)" + r + "}}}]";
}

inline PodInfoPtr Pod(const std::string& json) {
  auto p = ParsePodJson(json);
  EXPECT_TRUE(p.ok()) << p.status().ToString() << "\n" << json;
  if (!p.ok()) return std::make_shared<PodInfo>();
  return std::make_shared<const PodInfo>(std::move(*p));
}

struct NodeOpts {
  std::string cpu = "4";
  std::string memory = "8Gi";
  std::string pods = "110";
  std::string labels;  // extra label members: "\"zone\":\"a\""
  std::string spec;    // spec members: "\"unschedulable\":true"
  bool ready = true;
};

inline std::string NodeJson(const std::string& name, const NodeOpts& o = {}) {
  return R"({"apiVersion":"v1","kind":"Node","metadata":{"name":")" + name +
         R"(","labels":{"kubernetes.io/hostname":")" + name + "\"" + (o.labels.empty() ? "" : "," + o.labels) +
         R"(}},"spec":{)" + o.spec + R"(},"status":{"allocatable":{"cpu":")" + o.cpu + R"(","memory":")" + o.memory +
         R"(","pods":")" + o.pods + R"("},"conditions":[{"type":"Ready","status":")" + (o.ready ? "True" : "False") +
         R"("}]}})";
}

inline NodeSpecPtr Node(const std::string& name, const NodeOpts& o = {}) {
  auto n = ParseNodeJson(NodeJson(name, o));
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return std::make_shared<const NodeSpec>(std::move(*n));
}

// The pod bound to `node` (spec.nodeName set).
inline PodInfoPtr BoundTo(PodInfoPtr pod, const std::string& node) {
  auto copy = std::make_shared<PodInfo>(*pod);
  copy->node_name = node;
  return copy;
}

}  // namespace rc::scheduler::testing
