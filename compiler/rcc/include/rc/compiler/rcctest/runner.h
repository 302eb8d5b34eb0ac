// `rcc test`: data-driven unit tests for reconcilers. A YAML test file gives the initial cluster
// state, the reconciles to run (single keys, or a simulated controller manager until
// converged) and assertions on the resulting objects and on the recorded actions; built-in
// perturbations (stale cache, a missed watch event, a crash after the K-th write) rerun each
// test and require the same final state. The format is described in docs/language.md ("rcc
// test").
#pragma once

#include <rapidjson/document.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rc/base/status.h"
#include "rc/compiler/rcctest/fake_cluster.h"

namespace rc::rcctest {

struct Perturbation {
  enum class Kind { kNone, kStaleCache, kMissedEvent, kCrashAfter } kind = Kind::kNone;
  int n = 1;  // missed-event: which watch event is dropped (1 = the first); crash-after: K
              // (0: each K from 1 to the most writes a reconcile of the unperturbed run made)
  std::string Name() const;  // "stale-cache", "missed-event", "missed-event: 3", "crash-after: 2"
};

// Where something is in a test file.
struct Pos {
  int line = 0;
  int column = 0;
};

struct ObjectExpectation {
  Pos pos;
  std::string kind, ns, name;
  const rapidjson::Value* labels = nullptr;  // subset of metadata.labels
  std::string owner;                         // "Kind/name": a controller ownerReference
  std::optional<bool> deleting;              // metadata.deletionTimestamp set or not
  std::optional<int64_t> count;              // exact number (default: at least one)
  const rapidjson::Value* where = nullptr;   // selects only objects containing this (subset)
  const rapidjson::Value* match = nullptr;   // every selected object contains this (subset)
};

struct ActionExpectation {
  Pos pos;
  std::string verb, kind, ns, name, name_prefix, reason, event_type, message;  // message: substring
  std::optional<bool> ok;
  std::optional<int64_t> count;  // exact (default: at least one)
};

struct Expectation {
  Pos pos;
  std::vector<ObjectExpectation> objects;
  std::vector<ActionExpectation> actions;
  std::optional<std::string> error;  // a reconcile failed with this message (substring)
};

struct Step {
  enum class Kind { kReconcile, kConverge, kPut, kDelete, kAdvance, kExpect, kKubelet } kind = Kind::kConverge;
  Pos pos;
  std::string controller;  // empty: the test's
  std::vector<std::string> controllers;  // kConverge: several controllers at once
  std::string key;         // kReconcile: "namespace/name" (or "name")
  int times = 1;
  bool until_converged = false;
  int max = 0;  // bound on reconciles (0: default)
  bool kubelet = false;  // kConverge: the stand-in node agent runs after every reconcile
  std::vector<const rapidjson::Value*> objects;  // kPut
  std::string target_kind, target_ns, target_name;  // kDelete
  int64_t seconds = 0;                          // kAdvance
  Expectation expect;                           // kExpect
};

struct TestCase {
  std::string name;
  std::string file;
  Pos pos;
  std::string controller;
  std::vector<std::string> controllers;  // converge steps run these together (default: controller)
  int64_t now = 0;
  std::vector<const rapidjson::Value*> objects;  // shared objects first
  std::vector<Step> steps;
  std::vector<Perturbation> perturbations;
  Expectation expect;
};

struct TestFile {
  std::string path;
  std::vector<std::string> rc_files;  // `files:` resolved against the test file's directory
  std::unique_ptr<rapidjson::Document> doc;  // owns every JSON value the tests point to
  std::vector<TestCase> tests;
};

// Parses a test file. Errors say "path:line:col: message".
Result<TestFile> ParseTestFile(const std::string& path, const std::string& text);

// The compiled controllers and resource types one or more test files run against.
class Suite {
 public:
  ~Suite();
  // Checks `rc_files` (with their imports; `import_paths` as rcc -I), compiles the resource
  // types (defaults, validation) and the controllers. Diagnostics text on failure.
  static Result<std::unique_ptr<Suite>> Load(const std::vector<std::string>& rc_files,
                                             const std::vector<std::string>& import_paths);

  struct Outcome {
    bool ok = true;
    std::string message;  // why it failed (with the expectation's file:line)
    // One line per run: "unperturbed: 7 reconciles, 5 writes, 0 failed", "crash-after: 2: ...".
    std::vector<std::string> runs;
  };
  // Runs the test without perturbation, then once per perturbation.
  Outcome Run(const TestCase& test);

  std::vector<std::string> controller_names() const;

  class Impl;

 private:
  Suite() = default;
  std::unique_ptr<Impl> impl_;
};

// Subset match: every member of `want` is in `have` with a matching value; lists match element
// by element (same length); numbers by value; `null` matches absent. On mismatch `why` says where.
bool SubsetMatch(const rapidjson::Value& want, const rapidjson::Value* have, const std::string& path, std::string* why);

// The final state as comparable text: one line per stored object, with uid, resourceVersion,
// creationTimestamp and managedFields dropped, owner uids replaced by "Kind/namespace/name",
// generated names by "<generateName>*"; sorted.
std::vector<std::string> NormalizedState(const FakeCluster& cluster);

// `rcc test ARGS...`: returns the exit code (0 all passed, 1 failures, 2 usage); prints one line
// per test and "N passed, N failed" on `out`, errors on `err`.
// `filter`: only tests whose name contains it; `verbose`: a line per run under each test.
int RunTestCommand(const std::vector<std::string>& paths, const std::vector<std::string>& import_paths,
                   std::ostream& out, std::ostream& err, const std::string& filter = "", bool verbose = false);

}  // namespace rc::rcctest
