// Source files and diagnostics shared by every phase of the rc compiler.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rc::dsl {

struct SourceFile {
  std::string path;  // as given on the command line
  std::string text;
  std::vector<uint32_t> line_starts;  // byte offset of each line

  SourceFile(std::string path, std::string text);
  // 1-based line and column (in bytes) of a byte offset.
  std::pair<int, int> LineCol(uint32_t offset) const;
  std::string_view Line(int line) const;  // without the newline
};

// A byte range in a source file.
struct SourceRange {
  const SourceFile* file = nullptr;
  uint32_t begin = 0;
  uint32_t end = 0;  // exclusive; end == begin marks a point
};

enum class Severity { kError, kWarning, kNote };

struct Diagnostic {
  Severity severity = Severity::kError;
  std::string code;     // "E0101"
  std::string message;  // "unknown field 'replica' in DeploymentSpec"
  SourceRange range;
  std::string hint;     // "did you mean 'replicas'?" (may be empty)
};

// Collects diagnostics of one compilation; formats them for terminals and CI.
class Diagnostics {
 public:
  void Error(std::string code, SourceRange range, std::string message, std::string hint = "");
  void Warning(std::string code, SourceRange range, std::string message, std::string hint = "");
  bool HasErrors() const { return errors_ > 0; }
  int ErrorCount() const { return errors_; }
  const std::vector<Diagnostic>& All() const { return diags_; }
  // Orders diagnostics by file and position (stable), as compilers print them.
  void Sort();
  // Stops recording after this many errors (a runaway input cannot flood the output).
  void SetLimit(int limit) { limit_ = limit; }

  // "file:line:col: error[E0101]: message\n  source line\n  ^^^^\n  hint: ...\n" per diagnostic.
  std::string FormatText() const;
  // One JSON object per diagnostic in an array: file, line, column, endLine, endColumn,
  // severity, code, message, hint.
  std::string FormatJson() const;

 private:
  std::vector<Diagnostic> diags_;
  int errors_ = 0;
  int limit_ = 200;
};

// Levenshtein-closest candidate within a small distance, or "" (for "did you mean" hints).
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace rc::dsl
