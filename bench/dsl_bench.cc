// DSL compiler and JIT benchmarks (issue 3), each against its goal or a hand-written C++ peer:
//   1. cold check + compile of every .rc file given (resources/, stdlib/): goal < 1 s
//   2. recompiling one changed file while the others stay loaded: goal < 100 ms
//   3. a JIT-compiled selector match + filter over 10k objects vs the same loop in C++:
//      goal within 1.5x
// Usage: dsl_bench [--rounds N] FILE_OR_DIR...   (prints a Markdown report and a JSON line)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <rapidjson/document.h>

#include "rc/apimachinery/selector.h"
#include "rc/compiler/codegen.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"
#include "rc/compiler/resource_loader.h"
#include "rc/stdlib/runtime.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using rc::compiler::SourceList;

namespace {

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

SourceList Gather(const std::vector<std::string>& inputs) {
  SourceList out;
  for (auto& in : inputs) {
    std::vector<fs::path> files;
    if (fs::is_directory(in)) {
      for (auto& e : fs::recursive_directory_iterator(in)) {
        if (e.path().extension() == ".rc" && e.path().filename() != "meta_v1.rc") files.push_back(e.path());
      }
    } else {
      files.push_back(in);
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      std::ifstream s(f, std::ios::binary);
      std::ostringstream ss;
      ss << s.rdbuf();
      out.push_back({f.string(), ss.str()});
    }
  }
  return out;
}

const char* kFilterSource = R"rc(
struct PodSpec { nodeName: string; }
struct PodStatus { phase: string; }
resource Pod { version = "v1"; spec: PodSpec; status: PodStatus; }
fn countMatching(pods: [Pod], sel: LabelSelector) -> int =
  pods.count(p => p.status.phase == "Running" && labelsMatch(sel, p.metadata.labels));
fn namesMatching(pods: [Pod], sel: LabelSelector) -> [string] =
  pods.filter(p => p.status.phase == "Running" && labelsMatch(sel, p.metadata.labels)).map(p => p.metadata.name);
)rc";

// The hand-written C++ peer of countMatching / namesMatching over the same rapidjson values.
bool MatchesCpp(const rapidjson::Value& p, const rc::apimachinery::LabelSelector& sel) {
  auto st = p.FindMember("status");
  if (st == p.MemberEnd()) return false;
  auto ph = st->value.FindMember("phase");
  if (ph == st->value.MemberEnd() || !ph->value.IsString() || std::strcmp(ph->value.GetString(), "Running") != 0) return false;
  auto md = p.FindMember("metadata");
  const rapidjson::Value* labels = nullptr;
  if (md != p.MemberEnd()) {
    auto l = md->value.FindMember("labels");
    if (l != md->value.MemberEnd()) labels = &l->value;
  }
  return sel.Matches(labels);
}

int64_t CountMatchingCpp(const rapidjson::Value& pods, const rapidjson::Value& sel_json) {
  auto sel = rc::apimachinery::LabelSelectorFromJson(&sel_json);
  int64_t n = 0;
  for (auto& p : pods.GetArray()) n += MatchesCpp(p, *sel);
  return n;
}

std::vector<std::string> NamesMatchingCpp(const rapidjson::Value& pods, const rapidjson::Value& sel_json) {
  auto sel = rc::apimachinery::LabelSelectorFromJson(&sel_json);
  std::vector<std::string> out;
  for (auto& p : pods.GetArray()) {
    if (!MatchesCpp(p, *sel)) continue;
    const auto& name = p["metadata"]["name"];
    out.emplace_back(name.GetString(), name.GetStringLength());
  }
  return out;
}

struct Call2 {
  void* fn;
  rc_ctx* ctx;
  const rc_value* a;
  const rc_value* b;
  int64_t n;
  rc_value* list;
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (a == "-h" || a == "--help") {
      std::cout << "usage: dsl_bench [--rounds N] FILE_OR_DIR...\n";
      return 0;
    } else inputs.push_back(a);
  }
  SourceList sources = Gather(inputs);
  if (sources.empty()) {
    std::cerr << "dsl_bench: no .rc files in the inputs\n";
    return 2;
  }
  size_t bytes = 0;
  for (auto& s : sources) bytes += s.second.size();

  // 1. Cold: a fresh JIT each round (no object cache), check + lower + codegen + O2 + machine code.
  std::vector<double> cold, check_only;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    rc::dsl::Diagnostics d0;
    auto p = rc::compiler::CheckSources(sources, d0);
    check_only.push_back(Ms(Clock::now() - t0));
    if (d0.HasErrors()) {
      std::cerr << d0.FormatText();
      return 1;
    }
    auto jit = rc::compiler::JitHost::Create();
    auto t1 = Clock::now();
    rc::compiler::ResourceLoader loader(jit->get());
    rc::dsl::Diagnostics d;
    auto res = loader.Load(sources, {}, "all", d);
    if (!res.ok()) {
      std::cerr << res.status().message();
      return 1;
    }
    cold.push_back(Ms(Clock::now() - t1));
  }

  // 2. One changed file: the others are visible (checked again) but only the edited file's module
  //    is compiled.
  auto jit = rc::compiler::JitHost::Create();
  rc::compiler::ResourceLoader loader(jit->get());
  std::vector<double> one;
  size_t edited = 0;  // the largest file: the worst case
  for (size_t i = 1; i < sources.size(); ++i) {
    if (sources[i].second.size() > sources[edited].second.size()) edited = i;
  }
  for (int r = 0; r < rounds * 2; ++r) {
    SourceList others;
    for (size_t i = 0; i < sources.size(); ++i) if (i != edited) others.push_back(sources[i]);
    SourceList changed = {{sources[edited].first, sources[edited].second + "\n// edit " + std::to_string(r) + "\n"}};
    auto t0 = Clock::now();
    rc::dsl::Diagnostics d;
    auto res = loader.Load(changed, others, "edited", d);
    if (!res.ok()) {
      std::cerr << res.status().message();
      return 1;
    }
    one.push_back(Ms(Clock::now() - t0));
  }

  // 2b. The hot-reload case: an operator's own resource file edited while the built-ins stay.
  const std::string widget = R"rc(
resource Widget {
  group = "example.com";
  version = "v1";
  spec: WidgetSpec;
  column "Size": int = spec.size;
  column "Summary" = "${spec.color}/${spec.size * 10}";
}
struct WidgetSpec { size: int = 1 @min(1); color: string = "Blue"; owner: string @required; }
)rc";
  std::vector<double> user_file;
  for (int r = 0; r < rounds * 2; ++r) {
    SourceList changed = {{"widget.rc", widget + "// edit " + std::to_string(r) + "\n"}};
    auto t0 = Clock::now();
    rc::dsl::Diagnostics d;
    auto res = loader.Load(changed, sources, "user", d);
    if (!res.ok()) {
      std::cerr << res.status().message();
      return 1;
    }
    user_file.push_back(Ms(Clock::now() - t0));
  }

  // 3. Selector + filter over 10k objects: JIT vs C++.
  const int kObjects = 10000;
  std::string pods_json = "[";
  for (int i = 0; i < kObjects; ++i) {
    if (i) pods_json += ",";
    pods_json += "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"pod-" + std::to_string(i) +
                 "\",\"namespace\":\"default\",\"labels\":{\"app\":\"" + (i % 2 ? "web" : "db") + "\",\"tier\":\"" +
                 (i % 3 ? "front" : "back") + "\",\"pod-template-hash\":\"abc" + std::to_string(i % 7) +
                 "\"}},\"spec\":{\"nodeName\":\"node-" + std::to_string(i % 10) + "\"},\"status\":{\"phase\":\"" +
                 (i % 5 ? "Running" : "Pending") + "\"}}";
  }
  pods_json += "]";
  rapidjson::Document pods;
  pods.Parse(pods_json.c_str());
  rapidjson::Document sel;
  sel.Parse(R"({"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["front","edge"]}]})");

  rc::dsl::Diagnostics d;
  auto program = rc::compiler::CheckSources({{"bench.rc", kFilterSource}}, d);
  if (d.HasErrors()) {
    std::cerr << d.FormatText();
    return 1;
  }
  (*jit)->AddOrReplace("filter", program->content_hash, rc::compiler::GenerateModule(*program, "filter"));
  auto count_fn = (*jit)->Lookup("filter", "rc_fn_countMatching");
  auto names_fn = (*jit)->Lookup("filter", "rc_fn_namesMatching");
  int reps = 50;
  int64_t jit_count = 0, cpp_count = 0;
  size_t jit_names = 0, cpp_names = 0;
  std::vector<double> jc, cc, jn, cn;
  for (int r = 0; r < reps; ++r) {
    {
      rc_ctx ctx;
      Call2 c{count_fn->address, &ctx, &pods, &sel, 0, nullptr};
      auto t0 = Clock::now();
      rc::rt::Invoke(&ctx, [](void* p) {
        auto* c = static_cast<Call2*>(p);
        c->n = reinterpret_cast<int64_t (*)(rc_ctx*, const rc_value*, const rc_value*)>(c->fn)(c->ctx, c->a, c->b);
      }, &c);
      jc.push_back(Ms(Clock::now() - t0));
      jit_count = c.n;
    }
    {
      auto t0 = Clock::now();
      cpp_count = CountMatchingCpp(pods, sel);
      cc.push_back(Ms(Clock::now() - t0));
    }
    {
      rc_ctx ctx;
      Call2 c{names_fn->address, &ctx, &pods, &sel, 0, nullptr};
      auto t0 = Clock::now();
      rc::rt::Invoke(&ctx, [](void* p) {
        auto* c = static_cast<Call2*>(p);
        c->list = reinterpret_cast<rc_value* (*)(rc_ctx*, const rc_value*, const rc_value*)>(c->fn)(c->ctx, c->a, c->b);
      }, &c);
      jn.push_back(Ms(Clock::now() - t0));
      jit_names = c.list ? c.list->Size() : 0;
    }
    {
      auto t0 = Clock::now();
      cpp_names = NamesMatchingCpp(pods, sel).size();
      cn.push_back(Ms(Clock::now() - t0));
    }
  }
  if (jit_count != cpp_count || jit_names != cpp_names) {
    std::cerr << "dsl_bench: results differ: jit " << jit_count << "/" << jit_names << " vs c++ " << cpp_count << "/" << cpp_names << "\n";
    return 1;
  }

  double cold_ms = Median(cold), check_ms = Median(check_only), one_ms = Median(one), user_ms = Median(user_file);
  double jc_ms = Median(jc), cc_ms = Median(cc), jn_ms = Median(jn), cn_ms = Median(cn);
  printf("## DSL compiler and JIT\n\n");
  printf("%zu files, %zu bytes; medians of %d rounds (JIT loops: %d).\n\n", sources.size(), bytes, rounds, reps);
  printf("| measurement | rc | goal / peer | ratio |\n|---|---|---|---|\n");
  printf("| cold check (parse + type-check) of all files | %.1f ms | | |\n", check_ms);
  printf("| cold check + lower + codegen + O2 + JIT of all files | %.1f ms | < 1000 ms | %.2fx of budget |\n", cold_ms, cold_ms / 1000);
  printf("| recompile the largest file (%s) with the others loaded | %.1f ms | < 100 ms | %.2fx of budget |\n", fs::path(sources[edited].first).filename().c_str(), one_ms, one_ms / 100);
  printf("| recompile an operator's resource file on top of all the above | %.1f ms | < 100 ms | %.2fx of budget |\n", user_ms, user_ms / 100);
  printf("| count(selector && phase) over %d objects: JIT vs C++ | %.3f ms | %.3f ms | %.2fx |\n", kObjects, jc_ms, cc_ms, jc_ms / cc_ms);
  printf("| filter(...).map(name) over %d objects: JIT vs C++ | %.3f ms | %.3f ms | %.2fx |\n", kObjects, jn_ms, cn_ms, jn_ms / cn_ms);
  printf("\n{\"files\":%zu,\"bytes\":%zu,\"check_ms\":%.2f,\"cold_ms\":%.2f,\"one_file_ms\":%.2f,\"user_file_ms\":%.2f,\"count_jit_ms\":%.4f,\"count_cpp_ms\":%.4f,\"names_jit_ms\":%.4f,\"names_cpp_ms\":%.4f,\"matches\":%lld}\n",
         sources.size(), bytes, check_ms, cold_ms, one_ms, user_ms, jc_ms, cc_ms, jn_ms, cn_ms, static_cast<long long>(jit_count));
  return 0;
}
