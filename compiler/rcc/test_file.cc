// Parsing of `rcc test` YAML files into TestCase values (positions from yaml-cpp marks, values
// through rc_apimachinery's Kubernetes-compatible YAML -> JSON conversion).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <map>

#include "rc/apimachinery/yaml.h"
#include "rc/compiler/rcctest/runner.h"
#include "rc/dsl/source.h"

namespace rc::rcctest {

namespace {

using V = rapidjson::Value;

struct ParseError {
  std::string path;  // JSON pointer of the offending node
  std::string message;
};

class Parser {
 public:
  Parser(const std::string& file, std::map<std::string, Pos> marks) : file_(file), marks_(std::move(marks)) {}

  // The position of the node at `path` (a JSON pointer); "<path>#key" is the position of the
  // mapping key itself. Falls back to the closest enclosing node.
  Pos PosOf(std::string path) const {
    if (path.size() > 4 && path.compare(path.size() - 4, 4, "#key") == 0) {
      auto it = marks_.find(path);
      if (it != marks_.end()) return it->second;
      path.resize(path.size() - 4);
    }
    while (true) {
      auto it = marks_.find(path);
      if (it != marks_.end()) return it->second;
      if (path.empty()) return {1, 1};
      path = path.substr(0, path.rfind('/'));
    }
  }

  [[noreturn]] void Fail(const std::string& path, const std::string& message) { throw ParseError{path, message}; }

  const V& Object(const V& v, const std::string& path, const char* what) {
    if (!v.IsObject()) Fail(path, std::string(what) + " must be a mapping");
    return v;
  }
  void Keys(const V& v, const std::string& path, const char* what, const std::vector<std::string>& allowed) {
    for (auto& m : v.GetObject()) {
      std::string k(m.name.GetString(), m.name.GetStringLength());
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string hint = dsl::ClosestMatch(k, allowed);
        Fail(path + "/" + k + "#key", "unknown key '" + k + "' in " + what + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      }
    }
  }
  std::string String(const V& v, const std::string& path, const char* what) {
    if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
    if (v.IsInt64()) return std::to_string(v.GetInt64());
    Fail(path, std::string(what) + " must be a string");
  }
  int64_t Int(const V& v, const std::string& path, const char* what, int64_t min = 0, int64_t max = 1000000) {
    if (!v.IsInt64()) Fail(path, std::string(what) + " must be an integer");
    if (v.GetInt64() < min) Fail(path, std::string(what) + " must be at least " + std::to_string(min));
    if (v.GetInt64() > max) Fail(path, std::string(what) + " must be at most " + std::to_string(max));
    return v.GetInt64();
  }
  bool Bool(const V& v, const std::string& path, const char* what) {
    if (!v.IsBool()) Fail(path, std::string(what) + " must be true or false");
    return v.GetBool();
  }
  int64_t Time(const V& v, const std::string& path) {
    std::string s = String(v, path, "now");
    auto t = ParseTime(s);
    if (!t) Fail(path, "now must be an RFC 3339 time such as 2024-01-01T00:00:00Z, found \"" + s + "\"");
    return *t;
  }
  int64_t Seconds(const V& v, const std::string& path) {
    if (v.IsInt64()) return v.GetInt64();
    std::string s = String(v, path, "advance");
    int64_t total = 0;
    size_t i = 0;
    if (s.empty()) Fail(path, "advance must be a duration such as 30s, 5m or 1h30m");
    while (i < s.size()) {
      size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      if (j == i || j == s.size()) Fail(path, "advance must be a duration such as 30s, 5m or 1h30m, found \"" + s + "\"");
      int64_t n = std::stoll(s.substr(i, j - i));
      char unit = s[j];
      if (unit == 's') total += n;
      else if (unit == 'm') total += n * 60;
      else if (unit == 'h') total += n * 3600;
      else Fail(path, "advance must be a duration such as 30s, 5m or 1h30m, found \"" + s + "\"");
      i = j + 1;
    }
    return total;
  }

  std::vector<std::string> Names(const V& v, const std::string& path) {
    std::vector<std::string> out;
    if (!v.IsArray() || v.Empty()) Fail(path, "controllers must be a non-empty list of controller names");
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) out.push_back(String(v[i], path + "/" + std::to_string(i), "a controller name"));
    return out;
  }

  std::vector<const V*> Objects(const V& v, const std::string& path) {
    std::vector<const V*> out;
    if (!v.IsArray()) Fail(path, "objects must be a list of Kubernetes objects");
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      std::string p = path + "/" + std::to_string(i);
      const V& o = v[i];
      if (!o.IsObject()) Fail(p, "an object must be a mapping with apiVersion, kind and metadata");
      if (!o.HasMember("kind") || !o["kind"].IsString()) Fail(p, "an object needs a kind");
      const V* meta = o.HasMember("metadata") ? &o["metadata"] : nullptr;
      if (!meta || !meta->IsObject() || ((!meta->HasMember("name") || !(*meta)["name"].IsString()) && !meta->HasMember("generateName"))) {
        Fail(p, "an object needs metadata.name");
      }
      out.push_back(&o);
    }
    return out;
  }

  Perturbation ParsePerturbation(const V& v, const std::string& path) {
    Perturbation p;
    const std::vector<std::string> names = {"stale-cache", "missed-event", "crash-after"};
    std::string name;
    const V* arg = nullptr;
    if (v.IsString()) {
      name = v.GetString();
    } else if (v.IsObject() && v.MemberCount() == 1) {
      name = v.MemberBegin()->name.GetString();
      arg = &v.MemberBegin()->value;
    } else {
      Fail(path, "a perturbation is stale-cache, missed-event, missed-event: N, crash-after: K or crash-after: each");
    }
    if (name == "stale-cache") {
      p.kind = Perturbation::Kind::kStaleCache;
      if (arg) Fail(path, "stale-cache takes no argument");
    } else if (name == "missed-event") {
      p.kind = Perturbation::Kind::kMissedEvent;
      if (arg) p.n = static_cast<int>(Int(*arg, path + "/" + name, "missed-event", 1));
    } else if (name == "crash-after") {
      p.kind = Perturbation::Kind::kCrashAfter;
      if (!arg) Fail(path, "crash-after needs the number of writes (crash-after: 1) or each");
      if (arg->IsString() && std::string(arg->GetString()) == "each") {
        p.n = 0;
      } else if (!arg->IsInt64()) {
        Fail(path + "/" + name, "crash-after takes a number of writes or each");
      } else {
        p.n = static_cast<int>(Int(*arg, path + "/" + name, "crash-after", 1));
      }
    } else {
      std::string hint = dsl::ClosestMatch(name, names);
      Fail(path, "unknown perturbation '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
    }
    return p;
  }

  Expectation ParseExpect(const V& v, const std::string& path) {
    Expectation e;
    e.pos = PosOf(path);
    Object(v, path, "expect");
    Keys(v, path, "expect", {"objects", "actions", "error"});
    if (v.HasMember("objects")) {
      const V& list = v["objects"];
      std::string lp = path + "/objects";
      if (!list.IsArray()) Fail(lp, "expect.objects must be a list");
      for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        std::string p = lp + "/" + std::to_string(i);
        const V& o = Object(list[i], p, "an object expectation");
        Keys(o, p, "an object expectation", {"kind", "namespace", "name", "labels", "owner", "deleting", "where", "count", "absent", "match"});
        ObjectExpectation x;
        x.pos = PosOf(p);
        if (!o.HasMember("kind")) Fail(p, "an object expectation needs a kind");
        x.kind = String(o["kind"], p + "/kind", "kind");
        if (o.HasMember("namespace")) x.ns = String(o["namespace"], p + "/namespace", "namespace");
        if (o.HasMember("name")) x.name = String(o["name"], p + "/name", "name");
        if (o.HasMember("labels")) {
          x.labels = &o["labels"];
          if (!x.labels->IsObject()) Fail(p + "/labels", "labels must be a mapping");
        }
        if (o.HasMember("owner")) {
          x.owner = String(o["owner"], p + "/owner", "owner");
          if (x.owner.find('/') == std::string::npos) Fail(p + "/owner", "owner is Kind/name, such as ReplicaSet/web");
        }
        if (o.HasMember("deleting")) x.deleting = Bool(o["deleting"], p + "/deleting", "deleting");
        if (o.HasMember("count")) x.count = Int(o["count"], p + "/count", "count", 0, INT64_MAX);
        if (o.HasMember("absent")) {
          if (x.count) Fail(p + "/absent", "use either count or absent");
          if (Bool(o["absent"], p + "/absent", "absent")) x.count = 0;
        }
        if (o.HasMember("match")) x.match = &o["match"];
        if (o.HasMember("where")) x.where = &o["where"];
        if (!x.count && !x.name.empty()) x.count = 1;
        e.objects.push_back(std::move(x));
      }
    }
    if (v.HasMember("actions")) {
      const V& list = v["actions"];
      std::string lp = path + "/actions";
      if (!list.IsArray()) Fail(lp, "expect.actions must be a list");
      for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        std::string p = lp + "/" + std::to_string(i);
        const V& o = Object(list[i], p, "an action expectation");
        Keys(o, p, "an action expectation",
             {"verb", "kind", "namespace", "name", "namePrefix", "reason", "type", "message", "ok", "count"});
        ActionExpectation x;
        x.pos = PosOf(p);
        if (o.HasMember("verb")) {
          x.verb = String(o["verb"], p + "/verb", "verb");
          static const std::vector<std::string> verbs = {"create", "update", "status", "patch", "delete", "emit"};
          if (std::find(verbs.begin(), verbs.end(), x.verb) == verbs.end()) {
            std::string hint = dsl::ClosestMatch(x.verb, verbs);
            Fail(p + "/verb", "verb must be one of create, update, status, patch, delete, emit" +
                                  (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          }
        }
        auto str = [&](const char* k, std::string& out) {
          if (o.HasMember(k)) out = String(o[k], p + "/" + k, k);
        };
        str("kind", x.kind);
        str("namespace", x.ns);
        str("name", x.name);
        str("namePrefix", x.name_prefix);
        str("reason", x.reason);
        str("type", x.event_type);
        str("message", x.message);
        if (o.HasMember("ok")) x.ok = Bool(o["ok"], p + "/ok", "ok");
        if (o.HasMember("count")) x.count = Int(o["count"], p + "/count", "count", 0, INT64_MAX);
        e.actions.push_back(std::move(x));
      }
    }
    if (v.HasMember("error")) e.error = String(v["error"], path + "/error", "error");
    return e;
  }

  Step ParseStep(const V& v, const std::string& path) {
    Step s;
    s.pos = PosOf(path);
    if (v.IsString() && std::string(v.GetString()) == "converge") {
      s.kind = Step::Kind::kConverge;
      return s;
    }
    if (v.IsString() && std::string(v.GetString()) == "kubelet") {
      s.kind = Step::Kind::kKubelet;
      return s;
    }
    if (!v.IsObject()) Fail(path, "a step is converge, kubelet, {reconcile: KEY}, {apply: [...]}, {delete: {...}}, {advance: 30s} or {expect: {...}}");
    static const std::vector<std::string> kinds = {"converge", "reconcile", "apply", "delete", "advance", "expect"};
    std::string kind;
    for (auto& m : v.GetObject()) {
      std::string k = m.name.GetString();
      if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) {
        if (!kind.empty()) Fail(path, "a step does one thing: both '" + kind + "' and '" + k + "'");
        kind = k;
      }
    }
    if (kind.empty()) {
      Fail(path, "a step needs one of converge, reconcile, apply, delete, advance, expect");
    }
    std::string kp = path + "/" + kind;
    const V& arg = v[kind.c_str()];
    if (kind == "converge") {
      Keys(v, path, "a converge step", {"converge", "controller", "controllers", "max", "kubelet"});
      if (v.HasMember("kubelet")) s.kubelet = Bool(v["kubelet"], path + "/kubelet", "kubelet");
      if (v.HasMember("controllers")) {
        if (v.HasMember("controller")) Fail(path + "/controllers", "use either controller or controllers");
        s.controllers = Names(v["controllers"], path + "/controllers");
      }
      s.kind = Step::Kind::kConverge;
      if (!arg.IsNull() && !(arg.IsBool() && arg.GetBool())) Fail(kp, "converge takes no value (write `- converge`)");
    } else if (kind == "reconcile") {
      Keys(v, path, "a reconcile step", {"reconcile", "controller", "times", "until", "max"});
      s.kind = Step::Kind::kReconcile;
      s.key = String(arg, kp, "reconcile (the primary's key, namespace/name)");
      if (v.HasMember("times")) s.times = static_cast<int>(Int(v["times"], path + "/times", "times", 1));
      if (v.HasMember("until")) {
        std::string u = String(v["until"], path + "/until", "until");
        if (u != "converged") Fail(path + "/until", "until must be 'converged'");
        if (v.HasMember("times")) Fail(path + "/until", "use either times or until");
        s.until_converged = true;
      }
    } else if (kind == "apply") {
      Keys(v, path, "an apply step", {"apply"});
      s.kind = Step::Kind::kPut;
      s.objects = Objects(arg, kp);
    } else if (kind == "delete") {
      Keys(v, path, "a delete step", {"delete"});
      s.kind = Step::Kind::kDelete;
      Object(arg, kp, "delete");
      Keys(arg, kp, "delete", {"kind", "namespace", "name"});
      if (!arg.HasMember("kind") || !arg.HasMember("name")) Fail(kp, "delete needs kind and name");
      s.target_kind = String(arg["kind"], kp + "/kind", "kind");
      s.target_name = String(arg["name"], kp + "/name", "name");
      if (arg.HasMember("namespace")) s.target_ns = String(arg["namespace"], kp + "/namespace", "namespace");
    } else if (kind == "advance") {
      Keys(v, path, "an advance step", {"advance"});
      s.kind = Step::Kind::kAdvance;
      s.seconds = Seconds(arg, kp);
    } else {
      Keys(v, path, "an expect step", {"expect"});
      s.kind = Step::Kind::kExpect;
      s.expect = ParseExpect(arg, kp);
    }
    if (v.HasMember("controller")) s.controller = String(v["controller"], path + "/controller", "controller");
    if (v.HasMember("max")) s.max = static_cast<int>(Int(v["max"], path + "/max", "max", 1));
    return s;
  }

  TestFile Parse(std::unique_ptr<rapidjson::Document> doc) {
    TestFile f;
    f.path = file_;
    const V& root = *doc;
    if (root.IsNull()) Fail("", "the test file is empty; it needs a tests: list");
    Object(root, "", "the test file");
    Keys(root, "", "the test file", {"files", "controller", "controllers", "now", "objects", "tests"});
    std::filesystem::path dir = std::filesystem::path(file_).parent_path();
    if (root.HasMember("files")) {
      const V& files = root["files"];
      if (!files.IsArray()) Fail("/files", "files must be a list of .rc paths (relative to this file)");
      for (rapidjson::SizeType i = 0; i < files.Size(); ++i) {
        std::string rel = String(files[i], "/files/" + std::to_string(i), "a file");
        f.rc_files.push_back((dir / rel).lexically_normal().string());
      }
    }
    std::string controller;
    if (root.HasMember("controller")) controller = String(root["controller"], "/controller", "controller");
    std::vector<std::string> controllers;
    if (root.HasMember("controllers")) controllers = Names(root["controllers"], "/controllers");
    int64_t now = *ParseTime("2024-01-01T00:00:00Z");
    if (root.HasMember("now")) now = Time(root["now"], "/now");
    std::vector<const V*> shared;
    if (root.HasMember("objects")) shared = Objects(root["objects"], "/objects");
    if (!root.HasMember("tests") || !root["tests"].IsArray() || root["tests"].Empty()) {
      Fail("/tests", "the test file needs a non-empty tests: list");
    }
    const V& tests = root["tests"];
    for (rapidjson::SizeType i = 0; i < tests.Size(); ++i) {
      std::string p = "/tests/" + std::to_string(i);
      const V& t = Object(tests[i], p, "a test");
      Keys(t, p, "a test", {"name", "controller", "controllers", "now", "objects", "steps", "perturb", "expect"});
      TestCase tc;
      tc.file = file_;
      tc.pos = PosOf(p);
      if (!t.HasMember("name")) Fail(p, "a test needs a name");
      tc.name = String(t["name"], p + "/name", "name");
      tc.controller = t.HasMember("controller") ? String(t["controller"], p + "/controller", "controller") : controller;
      tc.controllers = t.HasMember("controllers") ? Names(t["controllers"], p + "/controllers") : controllers;
      tc.now = t.HasMember("now") ? Time(t["now"], p + "/now") : now;
      tc.objects = shared;
      if (t.HasMember("objects")) {
        auto own = Objects(t["objects"], p + "/objects");
        tc.objects.insert(tc.objects.end(), own.begin(), own.end());
      }
      if (t.HasMember("steps")) {
        const V& steps = t["steps"];
        if (!steps.IsArray()) Fail(p + "/steps", "steps must be a list");
        for (rapidjson::SizeType j = 0; j < steps.Size(); ++j) {
          tc.steps.push_back(ParseStep(steps[j], p + "/steps/" + std::to_string(j)));
        }
      } else {
        Step s;
        s.kind = Step::Kind::kConverge;
        s.pos = tc.pos;
        tc.steps.push_back(s);
      }
      if (t.HasMember("perturb")) {
        const V& ps = t["perturb"];
        if (!ps.IsArray()) Fail(p + "/perturb", "perturb must be a list such as [stale-cache, missed-event, crash-after: 1]");
        for (rapidjson::SizeType j = 0; j < ps.Size(); ++j) {
          tc.perturbations.push_back(ParsePerturbation(ps[j], p + "/perturb/" + std::to_string(j)));
        }
      }
      if (t.HasMember("expect")) tc.expect = ParseExpect(t["expect"], p + "/expect");
      else tc.expect.pos = tc.pos;
      f.tests.push_back(std::move(tc));
    }
    f.doc = std::move(doc);
    return f;
  }

 private:
  std::string file_;
  std::map<std::string, Pos> marks_;
};

void CollectMarks(const YAML::Node& node, const std::string& path, std::map<std::string, Pos>& out) {
  YAML::Mark m = node.Mark();
  if (m.line >= 0) out.emplace(path, Pos{m.line + 1, m.column + 1});
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
      std::string p = path + "/" + key;
      YAML::Mark km = it->first.Mark();
      if (km.line >= 0) out.emplace(p + "#key", Pos{km.line + 1, km.column + 1});
      CollectMarks(it->second, p, out);
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) CollectMarks(node[i], path + "/" + std::to_string(i), out);
  }
}

}  // namespace

Result<TestFile> ParseTestFile(const std::string& path, const std::string& text) {
  auto parsed = apimachinery::ParseYamlToJson(text);
  if (!parsed.ok()) {
    // "yaml: line L, column C: reason" -> "path:L:C: reason"
    std::string m = parsed.status().message();
    int line = 0, col = 0;
    if (std::sscanf(m.c_str(), "yaml: line %d, column %d:", &line, &col) == 2) {
      return Status::InvalidArgument(path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                                     m.substr(m.find(':', m.find("column")) + 2));
    }
    return Status::InvalidArgument(path + ": " + m);
  }
  std::map<std::string, Pos> marks;
  try {
    CollectMarks(YAML::Load(text), "", marks);
  } catch (const YAML::Exception&) {
    // Positions are a convenience; the JSON conversion above accepted the file.
  }
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Swap(*parsed);
  Parser parser(path, std::move(marks));
  try {
    return parser.Parse(std::move(doc));
  } catch (const ParseError& e) {
    Pos pos = parser.PosOf(e.path);
    return Status::InvalidArgument(path + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": " + e.message);
  }
}

}  // namespace rc::rcctest
