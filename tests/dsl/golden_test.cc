// Registers one test per tests/dsl/golden/**/*.rc file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "rc/compiler/program.h"

namespace fs = std::filesystem;

namespace {

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the checker over one golden file; returns what the .expected file must contain.
std::string Actual(const fs::path& file) {
  std::string text = Read(file);
  std::string rel = fs::relative(file, RC_GOLDEN_DIR).string();
  rc::dsl::Diagnostics diags;
  auto program = rc::compiler::CheckSources({{rel, text}}, diags);
  std::string out;
  if (text.rfind("// golden: ast", 0) == 0) {
    for (auto& m : program->modules) {
      if (m->file->path == rel) out += rc::dsl::DumpAst(*m);
    }
    out += "---\n";
  }
  out += diags.FormatText();
  return out;
}

class GoldenTest : public testing::Test {
 public:
  explicit GoldenTest(fs::path file) : file_(std::move(file)) {}
  void TestBody() override {
    fs::path expected_path = file_;
    expected_path.replace_extension(".expected");
    std::string actual = Actual(file_);
    if (getenv("RC_UPDATE_GOLDENS")) {
      std::ofstream(expected_path, std::ios::binary) << actual;
      return;
    }
    ASSERT_TRUE(fs::exists(expected_path)) << "missing " << expected_path << " (run with RC_UPDATE_GOLDENS=1)";
    EXPECT_EQ(Read(expected_path), actual) << "golden mismatch for " << file_
                                           << " (RC_UPDATE_GOLDENS=1 rewrites expectations)";
  }

 private:
  fs::path file_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  std::vector<fs::path> files;
  for (auto& entry : fs::recursive_directory_iterator(RC_GOLDEN_DIR)) {
    if (entry.path().extension() == ".rc") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    std::string name = fs::relative(f, RC_GOLDEN_DIR).replace_extension("").string();
    for (auto& c : name) if (c == '/' || c == '-') c = '_';
    testing::RegisterTest("Golden", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [f]() -> testing::Test* { return new GoldenTest(f); });
  }
  return RUN_ALL_TESTS();
}
