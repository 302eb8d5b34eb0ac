// The built-in resource files (resources/*.rc) against what the API server served from its
// hand-written table: same names, scope, subresources, field selectors and table columns.
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "rc/compiler/program.h"

namespace rc::compiler {
namespace {

namespace fs = std::filesystem;

std::vector<schema::ResourceSchema> LoadBuiltins() {
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(RC_RESOURCES_DIR)) {
    if (e.path().extension() == ".rc" && e.path().filename() != "meta_v1.rc") files.push_back(e.path().string());
  }
  dsl::Diagnostics diags;
  auto program = CheckFiles(files, diags);
  EXPECT_FALSE(diags.HasErrors()) << diags.FormatText();
  return LowerResources(*program);
}

// One line per resource and per column, compared with builtin_resources.expected (written from
// the hand-written table the DSL files replaced; RC_UPDATE_GOLDENS=1 rewrites it).
std::string Describe(const std::vector<schema::ResourceSchema>& schemas) {
  std::vector<std::string> lines;
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  for (auto& s : schemas) {
    std::string line = (s.group.empty() ? "core" : s.group) + "/" + s.version + " " + s.kind + " plural=" + s.plural +
                       " singular=" + s.singular + " short=" + join(s.short_names) + " categories=" + join(s.categories) +
                       " namespaced=" + (s.namespaced ? "1" : "0") + " status=" + (s.has_status ? "1" : "0") +
                       " scale=" + (s.scale ? "1" : "0") +
                       " dnslabel=" + (s.name_format == schema::StringFormat::kDns1123Label ? "1" : "0") +
                       " fieldSelectors=" + join(s.field_selectors) + "\n";
    for (auto& c : s.columns) line += "  column " + c.name + (c.priority ? " (wide)" : "") + "\n";
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (auto& l : lines) out += l;
  return out;
}

TEST(BuiltinResources, MatchTheServedTable) {
  std::string actual = Describe(LoadBuiltins());
  std::string path = std::string(RC_GOLDEN_FILE);
  if (getenv("RC_UPDATE_GOLDENS")) {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual);
}

const schema::Field* FieldAt(const schema::ResourceSchema& s, const std::string& dotted) {
  const schema::Type* t = s.root.get();
  const schema::Field* f = nullptr;
  size_t start = 0;
  while (t) {
    size_t dot = dotted.find('.', start);
    f = t->FindField(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (!f || dot == std::string::npos) return f;
    t = f->type.get();
    if (t && t->kind == schema::TypeKind::kList) t = t->element.get();
    start = dot + 1;
  }
  return nullptr;
}

TEST(BuiltinResources, DefaultsAndConstraintsLanded) {
  auto schemas = LoadBuiltins();
  auto find = [&](const std::string& kind) -> const schema::ResourceSchema& {
    for (auto& s : schemas) if (s.kind == kind) return s;
    static schema::ResourceSchema none;
    ADD_FAILURE() << "no " << kind;
    return none;
  };
  const auto* restart = FieldAt(find("Pod"), "spec.restartPolicy");
  ASSERT_TRUE(restart);
  EXPECT_EQ(restart->default_json.value_or(""), "\"Always\"");
  const auto* containers = FieldAt(find("Pod"), "spec.containers");
  ASSERT_TRUE(containers);
  EXPECT_TRUE(containers->required);
  EXPECT_EQ(containers->type->list_map_keys, std::vector<std::string>{"name"});
  const auto* replicas = FieldAt(find("Deployment"), "spec.replicas");
  ASSERT_TRUE(replicas);
  EXPECT_EQ(replicas->type->constraints.minimum.value_or(-1), 0);
  EXPECT_EQ(replicas->default_json.value_or(""), "1");
  const auto* selector = FieldAt(find("Deployment"), "spec.selector");
  ASSERT_TRUE(selector);
  EXPECT_TRUE(selector->immutable);
  // A computed default (from the image tag) is left for compiled code.
  const auto* pull = FieldAt(find("Pod"), "spec.containers.imagePullPolicy");
  ASSERT_TRUE(pull);
  EXPECT_FALSE(pull->default_json.has_value());
  EXPECT_EQ(FieldAt(find("Service"), "spec.type")->default_json.value_or(""), "\"ClusterIP\"");
}

}  // namespace
}  // namespace rc::compiler
