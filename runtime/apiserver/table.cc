#include "table.h"

#include <algorithm>
#include <cctype>

namespace rc::apiserver {

namespace {

std::string Age(const JsonValue& obj, std::string_view path, int64_t now) {
  auto ts = ParseTimestamp(StrAt(obj, path));
  if (!ts) return "<unknown>";
  return HumanDuration(now - *ts);
}

// A cell as a JSON literal: a compiled DSL column, an age, or a dotted path into the object.
std::string Cell(const ResourceInfo& r, const ColumnInfo& col, const JsonValue& obj, int64_t now) {
  const std::string& src = col.source;
  if (col.compute_value || col.compute) {
    // A compiled DSL column; "date" columns render as ages like kubectl's.
    std::string text = col.compute_value ? col.compute_value(&obj, now) : col.compute(ToJson(obj), now);
    if (col.type == "date") {
      auto ts = ParseTimestamp(text);
      text = ts ? HumanDuration(now - *ts) : "<unknown>";
    }
    if (col.type == "integer") return text.empty() ? "0" : text;
    return Quote(text);
  }
  if (src.rfind("$agepath:", 0) == 0) return Quote(Age(obj, src.substr(9), now));
  if (src.empty() || src[0] != '$') {
    const JsonValue* v = Path(obj, src);
    if (col.type == "integer") {
      return std::to_string(v && v->IsInt64() ? v->GetInt64() : 0);
    }
    if (!v || v->IsNull()) return "\"\"";
    if (v->IsString()) return Quote(v->GetString());
    return Quote(ToJson(*v));
  }
  return Quote("");  // an unknown source: an empty cell
}

void AppendColumns(std::string& out, const ResourceInfo& r) {
  out += R"("columnDefinitions":[)";
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const auto& c = r.columns[i];
    if (i) out += ",";
    out += R"({"name":)" + Quote(c.name) + R"(,"type":)" + Quote(c.type) + R"(,"format":)" +
           Quote(c.format) + R"(,"description":)" + Quote(c.description) + R"(,"priority":)" +
           std::to_string(c.priority) + "}";
  }
  out += "]";
}

}  // namespace

std::vector<std::string> RowCells(const ResourceInfo& r, const JsonValue& obj, int64_t now_seconds) {
  std::vector<std::string> cells;
  for (const auto& c : r.columns) cells.push_back(Cell(r, c, obj, now_seconds));
  return cells;
}

std::string RenderTable(const ResourceInfo& r, const std::vector<const JsonValue*>& objects,
                        const std::string& list_resource_version, const std::string& continue_token,
                        TableObjectMode mode, bool with_headers) {
  int64_t now = NowSeconds();
  std::string out = R"({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":)" +
                    Quote(list_resource_version);
  if (!continue_token.empty()) out += R"(,"continue":)" + Quote(continue_token);
  out += "},";
  if (with_headers) {
    AppendColumns(out, r);
  } else {
    out += R"("columnDefinitions":null)";
  }
  out += R"(,"rows":[)";
  for (size_t i = 0; i < objects.size(); ++i) {
    const JsonValue& obj = *objects[i];
    if (i) out += ",";
    out += R"({"cells":[)";
    auto cells = RowCells(r, obj, now);
    for (size_t k = 0; k < cells.size(); ++k) {
      if (k) out += ",";
      out += cells[k];
    }
    out += "]";
    if (mode == TableObjectMode::kObject) {
      out += R"(,"object":)" + ToJson(obj);
    } else if (mode == TableObjectMode::kMetadata) {
      out += R"(,"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":)";
      const JsonValue* meta = Member(obj, "metadata");
      out += meta ? ToJson(*meta) : "{}";
      out += "}";
    }
    out += "}";
  }
  out += "]}";
  return out;
}

}  // namespace rc::apiserver
