#include "rc/dsl/source.h"

#include <algorithm>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace rc::dsl {

SourceFile::SourceFile(std::string p, std::string t) : path(std::move(p)), text(std::move(t)) {
  line_starts.push_back(0);
  for (uint32_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_starts.push_back(i + 1);
  }
}

std::pair<int, int> SourceFile::LineCol(uint32_t offset) const {
  auto it = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
  int line = static_cast<int>(it - line_starts.begin());
  return {line, static_cast<int>(offset - line_starts[line - 1]) + 1};
}

std::string_view SourceFile::Line(int line) const {
  if (line < 1 || line > static_cast<int>(line_starts.size())) return {};
  uint32_t b = line_starts[line - 1];
  uint32_t e = line < static_cast<int>(line_starts.size()) ? line_starts[line] : text.size();
  std::string_view v(text.data() + b, e - b);
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

void Diagnostics::Error(std::string code, SourceRange range, std::string message, std::string hint) {
  if (errors_ >= limit_) return;
  ++errors_;
  diags_.push_back({Severity::kError, std::move(code), std::move(message), range, std::move(hint)});
}

void Diagnostics::Warning(std::string code, SourceRange range, std::string message,
                          std::string hint) {
  if (diags_.size() >= static_cast<size_t>(limit_) * 2) return;
  diags_.push_back({Severity::kWarning, std::move(code), std::move(message), range, std::move(hint)});
}

void Diagnostics::Sort() {
  std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    std::string fa = a.range.file ? a.range.file->path : "", fb = b.range.file ? b.range.file->path : "";
    if (fa != fb) return fa < fb;
    return a.range.begin < b.range.begin;
  });
}

namespace {
const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kError: return "error";
    case Severity::kWarning: return "warning";
    case Severity::kNote: return "note";
  }
  return "error";
}
}  // namespace

std::string Diagnostics::FormatText() const {
  std::string out;
  for (const auto& d : diags_) {
    if (d.range.file) {
      auto [line, col] = d.range.file->LineCol(d.range.begin);
      out += d.range.file->path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
      out += std::string(SeverityName(d.severity)) + "[" + d.code + "]: " + d.message + "\n";
      std::string_view src = d.range.file->Line(line);
      if (src.size() > 300) src = src.substr(0, 300);
      out += "  " + std::string(src) + "\n  ";
      for (int i = 1; i < col && i <= static_cast<int>(src.size()); ++i) {
        out += src[i - 1] == '\t' ? '\t' : ' ';
      }
      uint32_t line_end = d.range.file->line_starts[line - 1] + src.size();
      uint32_t end = std::min(std::max(d.range.end, d.range.begin + 1), std::max(line_end, d.range.begin + 1));
      out += std::string(std::max<uint32_t>(1, end - d.range.begin), '^');
      out += "\n";
    } else {
      out += std::string(SeverityName(d.severity)) + "[" + d.code + "]: " + d.message + "\n";
    }
    if (!d.hint.empty()) out += "  hint: " + d.hint + "\n";
  }
  return out;
}

std::string Diagnostics::FormatJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& d : diags_) {
    w.StartObject();
    if (d.range.file) {
      auto [line, col] = d.range.file->LineCol(d.range.begin);
      auto [end_line, end_col] = d.range.file->LineCol(std::max(d.range.end, d.range.begin));
      w.Key("file"); w.String(d.range.file->path.c_str());
      w.Key("line"); w.Int(line);
      w.Key("column"); w.Int(col);
      w.Key("endLine"); w.Int(end_line);
      w.Key("endColumn"); w.Int(end_col);
    }
    w.Key("severity"); w.String(SeverityName(d.severity));
    w.Key("code"); w.String(d.code.c_str());
    w.Key("message"); w.String(d.message.c_str());
    if (!d.hint.empty()) { w.Key("hint"); w.String(d.hint.c_str()); }
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    // Levenshtein distance, two rows.
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        size_t cost = std::tolower(word[i - 1]) == std::tolower(c[j - 1]) ? 0 : 1;
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      }
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_distance) {
      best_distance = prev[c.size()];
      best = c;
    }
  }
  return best;
}

}  // namespace rc::dsl
