// The runner: test-file parsing (positions), expectations, the simulated manager and the
// perturbations catching controllers that are not level-triggered.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rc/compiler/rcctest/runner.h"

namespace rc::rcctest {
namespace {

namespace fs = std::filesystem;

const char* kControllers = R"rc(
struct WidgetSpec { parts: int; }
struct WidgetStatus { made: int; }
resource Widget { group = "example.com"; version = "v1"; subresource status; spec: WidgetSpec; status: WidgetStatus; }
struct PartSpec { color: string = "red"; }
resource Part { group = "example.com"; version = "v1"; spec: PartSpec = {}; }

fn ref(w: Widget) -> OwnerReference =
  { apiVersion: "example.com/v1", kind: "Widget", name: w.metadata.name, uid: w.metadata.uid, controller: true };
fn part(w: Widget) -> Part =
  new Part { metadata: { generateName: "${w.metadata.name}-", namespace: w.metadata.namespace, ownerReferences: [ref(w)] } };

// Level-triggered: compares what exists with what is wanted.
controller Good {
  primary Widget;
  owns Part;
  reconcile(w: Widget) {
    let parts = list(Part, namespace: w.metadata.namespace, owner: w);
    if parts.len() < w.spec.parts {
      for i in range(w.spec.parts - parts.len()) {
        let made = create(part(w));
        emit(w, "Normal", "Made", "made ${made.metadata.name}, uid ${made.metadata.uid != ""}");
      }
    } else if parts.len() > w.spec.parts {
      for p in parts.take(parts.len() - w.spec.parts) { delete(p); }
    }
    if w.status.made != parts.len() { updateStatus(w with { status: { made: parts.len() } }); }
  }
}

// Never removes extras: a stale cache makes it create too many, forever.
controller NoScaleDown {
  primary Widget;
  owns Part;
  reconcile(w: Widget) {
    let parts = list(Part, namespace: w.metadata.namespace, owner: w);
    for i in range(max(0, w.spec.parts - parts.len())) { create(part(w)); }
  }
}

// Counts in its own status instead of looking: a crash between the create and the status
// update makes one part too many.
controller Counter {
  primary Widget;
  reconcile(w: Widget) {
    if w.status.made < w.spec.parts {
      create(part(w));
      updateStatus(w with { status: { made: w.status.made + 1 } });
    }
  }
}

// Writes the status, then updates the object it read: the second write is stale (409).
controller StatusThenUpdate {
  primary Widget;
  reconcile(w: Widget) {
    updateStatus(w with { status: { made: 1 } });
    update(w with { metadata: { labels: { seen: "yes" } } });
  }
}

// Always writes something new: never converges.
controller Flapper {
  primary Widget;
  reconcile(w: Widget) { updateStatus(w with { status: { made: w.status.made + 1 } }); }
}
)rc";

class RunnerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("rcctest-" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    std::ofstream(*dir_ / "widgets.rc") << kControllers;
    auto suite = Suite::Load({(*dir_ / "widgets.rc").string()}, {});
    ASSERT_TRUE(suite.ok()) << suite.status().message();
    suite_ = std::move(*suite).release();
  }
  static void TearDownTestSuite() {
    delete suite_;
    fs::remove_all(*dir_);
    delete dir_;
  }

  // Parses `yaml` (a whole test file) and runs its first test.
  Suite::Outcome RunOne(const std::string& yaml) {
    auto file = ParseTestFile("t.yaml", yaml);
    EXPECT_TRUE(file.ok()) << file.status().message();
    if (!file.ok()) return {false, "parse"};
    files_.push_back(std::move(*file));
    return suite_->Run(files_.back().tests.at(0));
  }
  std::string ParseError(const std::string& yaml) {
    auto file = ParseTestFile("t.yaml", yaml);
    return file.ok() ? "parsed" : file.status().message();
  }

  static std::string Test(const std::string& controller, int parts, const std::string& rest) {
    return "controller: " + controller + R"(
objects:
  - {apiVersion: example.com/v1, kind: Widget, metadata: {name: w, namespace: ns, uid: w-1}, spec: {parts: )" +
           std::to_string(parts) + R"(}}
tests:
  - name: t
)" + rest;
  }

  static Suite* suite_;
  static fs::path* dir_;
  std::vector<TestFile> files_;
};
Suite* RunnerTest::suite_ = nullptr;
fs::path* RunnerTest::dir_ = nullptr;

TEST_F(RunnerTest, LevelTriggeredControllerSurvivesEveryPerturbation) {
  auto o = RunOne(Test("Good", 3, R"(
    perturb: [stale-cache, missed-event, missed-event: 2, crash-after: 1, crash-after: 3]
    expect:
      objects:
        - {kind: Part, namespace: ns, owner: Widget/w, count: 3, match: {spec: {color: red}, metadata: {generateName: w-}}}
        - {kind: Widget, name: w, match: {status: {made: 3}}}
      actions:
        - {verb: create, kind: Part, count: 3}
        - {verb: status, kind: Widget, count: 1}
        - {verb: emit, reason: Made, message: "made w-bbbbd, uid true"}
)"));
  EXPECT_TRUE(o.ok) << o.message;
}

TEST_F(RunnerTest, StaleCacheCatchesAControllerThatNeverScalesDown) {
  auto base = RunOne(Test("NoScaleDown", 2, R"(
    expect: {objects: [{kind: Part, count: 2}]}
)"));
  EXPECT_TRUE(base.ok) << base.message;
  auto o = RunOne(Test("NoScaleDown", 2, R"(
    perturb: [stale-cache]
    expect: {objects: [{kind: Part, count: 2}]}
)"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message.rfind("[stale-cache] t.yaml:", 0), 0u) << o.message;
  EXPECT_NE(o.message.find("expected 2 Part objects, found 3"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, CrashAfterCatchesAControllerThatCountsInsteadOfLooking) {
  auto base = RunOne(Test("Counter", 2, "    expect: {objects: [{kind: Part, count: 2}]}\n"));
  EXPECT_TRUE(base.ok) << base.message;
  // Without assertions on the count, the comparison with the unperturbed final state fails.
  auto o = RunOne(Test("Counter", 2, "    perturb: [crash-after: 1]\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("[crash-after: 1]"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("the final state differs from the unperturbed run"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, CrashAfterEachTriesEveryWrite) {
  // Good makes 3 creates in its first reconcile: crashes after write 1, 2 and 3 all converge.
  auto o = RunOne(Test("Good", 3, "    perturb: [crash-after: each]\n    expect: {objects: [{kind: Part, count: 3}]}\n"));
  EXPECT_TRUE(o.ok) << o.message;
  o = RunOne(Test("Counter", 2, "    perturb: [crash-after: each]\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("[crash-after: 1]"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, UnknownKindsInExpectationsGetAHint) {
  auto o = RunOne(Test("Good", 1, "    expect: {objects: [{kind: Parts, count: 1}]}\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message, "t.yaml:6: no resource type with kind 'Parts' is loaded; did you mean 'Part'?");
}

TEST_F(RunnerTest, PerturbationsThatNeverFireFail) {
  auto o = RunOne(Test("Good", 1, R"(
    steps: [{reconcile: ns/w}]
    perturb: [crash-after: 5]
)"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("crash-after: 5 never fired"), std::string::npos) << o.message;
  o = RunOne(Test("Good", 1, R"(
    steps: [{reconcile: ns/w}]
    perturb: [missed-event]
)"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("missed-event never fired"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, ConflictsFailTheBaselineUnlessExpected) {
  auto o = RunOne(Test("StatusThenUpdate", 1, "    steps: [{reconcile: ns/w}]\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("reconcile failed: ns/w: update Widget ns/w: Operation cannot be fulfilled on widgets.example.com \"w\""), std::string::npos)
      << o.message;
  o = RunOne(Test("StatusThenUpdate", 1, R"(
    steps: [{reconcile: ns/w}]
    expect:
      error: the object has been modified
      actions: [{verb: update, ok: false}, {verb: status, ok: true}]
)"));
  EXPECT_TRUE(o.ok) << o.message;
}

TEST_F(RunnerTest, NonConvergingControllerIsReported) {
  auto o = RunOne(Test("Flapper", 1, "    steps: [{reconcile: ns/w, until: converged, max: 5}]\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("ns/w did not converge within 5 reconciles"), std::string::npos) << o.message;
  o = RunOne(Test("Flapper", 1, "    steps: [{converge: true, max: 30}]\n"));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("did not converge within 30 reconciles"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, StepsApplyDeleteAdvanceAndMidwayExpectations) {
  auto o = RunOne(Test("Good", 2, R"(
    steps:
      - converge
      - expect: {objects: [{kind: Part, count: 2}], actions: [{verb: create, count: 2}]}
      - apply: [{apiVersion: example.com/v1, kind: Widget, metadata: {name: w, namespace: ns}, spec: {parts: 1}}]
      - converge
      - expect: {objects: [{kind: Part, count: 1}], actions: [{verb: delete, count: 1}, {verb: create, count: 0}]}
      - delete: {kind: Widget, namespace: ns, name: w}
      - advance: 1h
    expect:
      objects: [{kind: Part, count: 0}, {kind: Widget, absent: true}]
)"));
  EXPECT_TRUE(o.ok) << o.message;
}

TEST_F(RunnerTest, FailedExpectationsNameTheirLine) {
  auto o = RunOne(Test("Good", 2, R"(
    expect:
      objects:
        - {kind: Widget, name: w, match: {status: {made: 7}}}
)"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message, "t.yaml:9: Widget ns/w: status.made: expected 7, found 2");
  o = RunOne(Test("Good", 2, R"(
    expect:
      actions:
        - {verb: emit, reason: Made, message: nothing}
)"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.message.rfind("t.yaml:9: expected at least one emit reason Made message ~\"nothing\", found 0 (recorded: create Part ns/w-", 0), 0u) << o.message;
  o = RunOne(Test("Nope", 2, ""));
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("no controller named 'Nope'"), std::string::npos) << o.message;
  o = RunOne(Test("Good", 2, "    steps: [{reconcile: ns/missing}]\n"));
  EXPECT_NE(o.message.find("there is no Widget ns/missing to reconcile"), std::string::npos) << o.message;
}

TEST_F(RunnerTest, BadTestFilesReportPositions) {
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    expct: {}\n"),
            "t.yaml:3:5: unknown key 'expct' in a test; did you mean 'expect'?");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    perturb: [stale-cash]\n"),
            "t.yaml:3:15: unknown perturbation 'stale-cash'; did you mean 'stale-cache'?");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    perturb: [crash-after: 0]\n"),
            "t.yaml:3:28: crash-after must be at least 1");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    objects:\n      - {kind: Pod}\n"), "t.yaml:4:9: an object needs metadata.name");
  EXPECT_EQ(ParseError("now: yesterday\ntests: [{name: a}]\n"),
            "t.yaml:1:6: now must be an RFC 3339 time such as 2024-01-01T00:00:00Z, found \"yesterday\"");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    steps: [{advance: soon}]\n"),
            "t.yaml:3:23: advance must be a duration such as 30s, 5m or 1h30m, found \"soon\"");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    expect: {actions: [{verb: creat}]}\n"),
            "t.yaml:3:31: verb must be one of create, update, status, patch, delete, emit; did you mean 'create'?");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    steps: [{converge: true, controller: A, controllers: [A, B]}]\n"),
            "t.yaml:3:58: use either controller or controllers");
  EXPECT_EQ(ParseError("tests:\n  - name: a\n    steps: [{reconcile: a/b, times: 99999999999}]\n"),
            "t.yaml:3:37: times must be at most 1000000");
  EXPECT_EQ(ParseError("tests: []\n"), "t.yaml:1:8: the test file needs a non-empty tests: list");
  EXPECT_EQ(ParseError(""), "t.yaml:1:1: the test file is empty; it needs a tests: list");
  EXPECT_EQ(ParseError("tests:\n  - name: [unclosed\n"), ParseError("tests:\n  - name: [unclosed\n"));  // no crash
  EXPECT_EQ(ParseError("tests:\n  - name: [unclosed\n").rfind("t.yaml:", 0), 0u);
}

TEST_F(RunnerTest, SubsetMatchAndNormalizedState) {
  rapidjson::Document want, have;
  want.Parse(R"({"a":{"b":[{"c":1}]},"gone":null,"n":2})");
  have.Parse(R"({"a":{"b":[{"c":1.0,"d":2}]},"n":2.0,"x":1})");
  std::string why;
  EXPECT_TRUE(SubsetMatch(want, &have, "", &why)) << why;
  have.Parse(R"({"a":{"b":[{"c":1},{"c":2}]},"n":2})");
  EXPECT_FALSE(SubsetMatch(want, &have, "", &why));
  EXPECT_EQ(why, "a.b: expected 1 items, found 2: [{\"c\":1},{\"c\":2}]");
  have.Parse(R"({"a":{"b":[{"c":1}]},"gone":"here","n":2})");
  EXPECT_FALSE(SubsetMatch(want, &have, "", &why));
  EXPECT_EQ(why, "gone: expected absent, found \"here\"");
}

TEST(RcctestCommand, OutputAndExitCodes) {
  fs::path dir = fs::temp_directory_path() / ("rcctest-cmd-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "w.rc") << kControllers;
  std::ofstream(dir / "a.yaml") << "files: [w.rc]\ncontroller: Good\nobjects:\n"
                                   "  - {apiVersion: example.com/v1, kind: Widget, metadata: {name: w, namespace: ns}, spec: {parts: 1}}\n"
                                   "tests:\n  - name: one part\n    expect: {objects: [{kind: Part, count: 1}]}\n"
                                   "  - name: wrong\n    expect: {objects: [{kind: Part, count: 5}]}\n";
  std::ostringstream out, err;
  int code = RunTestCommand({(dir / "a.yaml").string()}, {}, out, err);
  EXPECT_EQ(code, 1);
  std::string a = (dir / "a.yaml").string();
  EXPECT_EQ(out.str(), "ok   " + a + ":6: one part\nFAIL " + a + ":8: wrong: " + a + ":9: expected 5 Part objects, found 1 [ns/w-bbbbc]\n1 passed, 1 failed\n");
  std::ostringstream out2, err2;
  EXPECT_EQ(RunTestCommand({(dir / "w.rc").string()}, {}, out2, err2), 2);
  EXPECT_EQ(err2.str(), "rcc test: no test files (.yaml) given\n");
  std::ostringstream out3, err3;
  EXPECT_EQ(RunTestCommand({(dir / "nope.yaml").string()}, {}, out3, err3), 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rc::rcctest
