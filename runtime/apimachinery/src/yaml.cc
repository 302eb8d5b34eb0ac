#include "rc/apimachinery/yaml.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <istream>
#include <limits>
#include <new>
#include <optional>
#include <streambuf>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "yaml_resolve.h"

namespace rc::apimachinery {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// Read-only streambuf over caller memory (no copy of the body).
class ViewBuf : public std::streambuf {
 public:
  ViewBuf(const char* data, std::size_t size) {
    char* p = const_cast<char*>(data);
    setg(p, p, p + size);
  }
};

std::string Position(const YAML::Mark& mark) {
  if (mark.is_null()) return "yaml";
  return "yaml: line " + std::to_string(mark.line + 1) + ", column " +
         std::to_string(mark.column + 1);
}

// Thrown from the event handler to abort yaml-cpp mid-parse (it unwinds the parser's recursion).
struct Abort {
  Status status;
};

[[noreturn]] void Fail(const YAML::Mark& mark, const std::string& reason, bool limit = false) {
  std::string msg = Position(mark) + ": " + reason;
  throw Abort{limit ? Status::ResourceExhausted(std::move(msg))
                    : Status::InvalidArgument(std::move(msg))};
}

constexpr std::size_t kMaxTotalNodes = 4u << 20;  // after alias expansion

class JsonBuilder : public YAML::EventHandler {
 public:
  JsonBuilder(Allocator& allocator, int max_depth) : a_(allocator), max_depth_(max_depth) {}

  // The converted document; null when the document was empty.
  Value& root() { return root_; }
  bool has_root() const { return has_root_; }
  const YAML::Mark& start() const { return start_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    start_ = mark;
    stack_.clear();
    anchors_.clear();
    has_root_ = false;
    root_.SetNull();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    CountNode(mark);
    ScalarValue s;
    s.kind = ScalarKind::kNull;
    Complete(Value(), mark, anchor, s);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end() || !it->second.complete) {
      Fail(mark, it == anchors_.end() ? "unknown anchor referenced"
                                      : "anchor references itself (recursive alias)");
    }
    const AnchorInfo& info = it->second;
    if (static_cast<int>(stack_.size()) + info.depth > max_depth_) {
      Fail(mark, "nesting depth exceeds the maximum of " + std::to_string(max_depth_), true);
    }
    alias_nodes_ += info.nodes;
    total_nodes_ += info.nodes;
    if (alias_nodes_ > 100 * parsed_nodes_ + 10000 || total_nodes_ > kMaxTotalNodes) {
      Fail(mark, "document contains excessive aliasing", true);
    }
    Value copy(info.value, a_);
    ScalarValue s = info.scalar;
    Complete(std::move(copy), mark, 0, s, info.nodes);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& text) override {
    CountNode(mark);
    ScalarValue s = ResolveTagged(mark, tag, text);
    Value v;
    switch (s.kind) {
      case ScalarKind::kNull:
        break;
      case ScalarKind::kBool:
        v.SetBool(s.b);
        break;
      case ScalarKind::kInt:
        v.SetInt64(s.i);
        break;
      case ScalarKind::kUint:
        v.SetUint64(s.u);
        break;
      case ScalarKind::kFloat: {
        if (!std::isfinite(s.d))
          Fail(mark, "unsupported value " + text + " (Inf and NaN cannot be represented in JSON)");
        // Go's json.Marshal prints integral float64 values without a fraction.
        if (s.d == std::floor(s.d) && std::fabs(s.d) < 9.2e18) {
          v.SetInt64(static_cast<int64_t>(s.d));
        } else {
          v.SetDouble(s.d);
        }
        break;
      }
      case ScalarKind::kMerge:
      case ScalarKind::kString:
        v.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), a_);
        break;
    }
    Complete(std::move(v), mark, anchor, s);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Push(mark, anchor, false);
  }
  void OnSequenceEnd() override { Pop(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Push(mark, anchor, true);
  }
  void OnMapEnd() override { Pop(); }

 private:
  struct Frame {
    bool is_map = false;
    Value value;
    YAML::Mark mark;
    YAML::anchor_t anchor = 0;
    std::size_t nodes_at_start = 0;
    // map state
    bool has_key = false;
    bool key_is_merge = false;
    Value key;
    YAML::Mark key_mark;
    std::vector<Value> merges;
  };

  struct AnchorInfo {
    bool complete = false;
    Value value;
    int depth = 0;
    std::size_t nodes = 1;
    ScalarValue scalar;
  };

  void CountNode(const YAML::Mark& mark) {
    ++parsed_nodes_;
    if (++total_nodes_ > kMaxTotalNodes) Fail(mark, "document has too many nodes", true);
  }

  ScalarValue ResolveTagged(const YAML::Mark& mark, const std::string& tag,
                            const std::string& text) {
    static const std::string kPrefix = "tag:yaml.org,2002:";
    if (tag == "?" || tag.empty()) return ResolvePlainScalar(text);
    if (tag == "!") return ScalarValue{};  // quoted / block scalar: a string
    if (tag.compare(0, kPrefix.size(), kPrefix) != 0) return ScalarValue{};  // unknown tag: string
    std::string_view t = std::string_view(tag).substr(kPrefix.size());
    if (t == "str" || t == "binary" || t == "timestamp") return ScalarValue{};
    ScalarValue r = ResolvePlainScalar(text);
    auto mismatch = [&]() { Fail(mark, "cannot decode `" + text + "` as a !!" + std::string(t)); };
    if (t == "int") {
      if (r.kind != ScalarKind::kInt && r.kind != ScalarKind::kUint) mismatch();
    } else if (t == "float") {
      if (r.kind == ScalarKind::kInt) {
        r.kind = ScalarKind::kFloat;
        r.d = static_cast<double>(r.i);
      } else if (r.kind == ScalarKind::kUint) {
        r.kind = ScalarKind::kFloat;
        r.d = static_cast<double>(r.u);
      } else if (r.kind != ScalarKind::kFloat) {
        mismatch();
      }
    } else if (t == "bool") {
      if (r.kind != ScalarKind::kBool) mismatch();
    } else if (t == "null") {
      if (r.kind != ScalarKind::kNull) mismatch();
    } else if (t == "merge") {
      if (r.kind != ScalarKind::kMerge) mismatch();
    } else {
      return ScalarValue{};  // other standard tags (set, omap, ...) on scalars: string
    }
    return r;
  }

  void Push(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    if (static_cast<int>(stack_.size()) + 1 > max_depth_) {
      Fail(mark, "nesting depth exceeds the maximum of " + std::to_string(max_depth_), true);
    }
    CountNode(mark);
    Frame f;
    f.is_map = is_map;
    f.value = is_map ? Value(rapidjson::kObjectType) : Value(rapidjson::kArrayType);
    f.mark = mark;
    f.anchor = anchor;
    f.nodes_at_start = total_nodes_ - 1;
    if (anchor != 0) anchors_[anchor] = AnchorInfo{};  // open: aliases to it are recursive
    stack_.push_back(std::move(f));
  }

  void Pop() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.is_map) {
      FinishMap(f);
    }
    ScalarValue s;
    Complete(std::move(f.value), f.mark, f.anchor, s, total_nodes_ - f.nodes_at_start);
  }

  void FinishMap(Frame& f) {
    if (f.has_key) Fail(f.mark, "internal error: mapping key without value");
    DeduplicateObjectKeys(f.value, a_);  // last duplicate wins (children are already unique)
    if (f.merges.empty()) return;
    // "<<" merge keys: explicit keys win; among merged maps the first one wins.
    auto add_from = [&](const Value& src) {
      for (auto it = src.MemberBegin(); it != src.MemberEnd(); ++it) {
        if (FindMember(f.value, JsonStringView(it->name)) == nullptr) {
          Value k(it->name, a_);
          Value v(it->value, a_);
          f.value.AddMember(k, v, a_);
        }
      }
    };
    for (Value& m : f.merges) {
      if (m.IsObject()) {
        add_from(m);
      } else {
        for (auto& e : m.GetArray()) add_from(e);
      }
    }
  }

  void Complete(Value v, const YAML::Mark& mark, YAML::anchor_t anchor, const ScalarValue& scalar,
                std::size_t nodes = 1) {
    if (anchor != 0) {
      AnchorInfo& info = anchors_[anchor];
      info.complete = true;
      info.value.CopyFrom(v, a_);
      info.depth = JsonDepth(v);
      info.nodes = nodes;
      info.scalar = scalar;
    }
    if (stack_.empty()) {
      root_ = std::move(v);
      has_root_ = true;
      return;
    }
    Frame& top = stack_.back();
    if (!top.is_map) {
      top.value.PushBack(v, a_);
      return;
    }
    if (!top.has_key) {
      top.key = KeyString(v, mark, scalar);
      top.key_is_merge = scalar.kind == ScalarKind::kMerge;
      top.key_mark = mark;
      top.has_key = true;
      return;
    }
    top.has_key = false;
    if (top.key_is_merge) {
      bool ok = v.IsObject();
      if (v.IsArray()) {
        ok = true;
        for (const auto& e : v.GetArray()) ok = ok && e.IsObject();
      }
      if (!ok) Fail(mark, "map merge requires map or sequence of maps as the value");
      top.merges.push_back(std::move(v));
      return;
    }
    top.value.AddMember(top.key, v, a_);
  }

  // Map keys become strings the way sigs.k8s.io/yaml converts them.
  Value KeyString(const Value& v, const YAML::Mark& mark, const ScalarValue& scalar) {
    if (v.IsObject() || v.IsArray())
      Fail(mark, "unsupported map key: only scalar keys can be converted to JSON");
    std::string s;
    switch (scalar.kind) {
      case ScalarKind::kNull:
        Fail(mark, "unsupported map key of type null");
      case ScalarKind::kBool:
        s = scalar.b ? "true" : "false";
        break;
      case ScalarKind::kInt:
        s = std::to_string(scalar.i);
        break;
      case ScalarKind::kUint:
        s = std::to_string(scalar.u);
        break;
      case ScalarKind::kFloat:
        s = FormatGoFloat32(scalar.d);
        break;
      case ScalarKind::kMerge:
      case ScalarKind::kString:
        if (!v.IsString()) Fail(mark, "unsupported map key");
        return Value(v, a_);
    }
    return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a_);
  }

  Allocator& a_;
  int max_depth_;
  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, AnchorInfo> anchors_;
  Value root_;
  bool has_root_ = false;
  YAML::Mark start_;
  std::size_t parsed_nodes_ = 0;
  std::size_t alias_nodes_ = 0;
  std::size_t total_nodes_ = 0;
};

// Checks UTF-8 well-formedness and YAML's printable set; returns the offset of the first bad
// byte or npos.
std::size_t FindInvalidByte(std::string_view s, std::string* reason) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        *reason = "control characters are not allowed";
        return i;
      }
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      *reason = "invalid leading UTF-8 octet";
      return i;
    }
    if (i + len > n) {
      *reason = "incomplete UTF-8 octet sequence";
      return i;
    }
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        *reason = "invalid trailing UTF-8 octet";
        return i;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      *reason = "invalid UTF-8 code point";
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

Status ConvertDocuments(std::string_view body, int max_depth, std::vector<rapidjson::Document>* out,
                        std::size_t stop_after_non_null) {
  if (max_depth < 1) max_depth = 1;
  std::string_view text = body;
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF) {
    text.remove_prefix(3);
  }
  std::string reason;
  std::size_t bad = FindInvalidByte(text, &reason);
  if (bad != std::string_view::npos) {
    return Status::InvalidArgument("yaml: " + LineColumn(text, bad) + ": " + reason);
  }
  ViewBuf buf(text.data(), text.size());
  std::istream in(&buf);
  try {
    YAML::Parser parser(in);
    std::size_t non_null = 0;
    int last_start = -1;
    while (true) {
      rapidjson::Document doc;
      JsonBuilder builder(doc.GetAllocator(), max_depth);
      if (!parser.HandleNextDocument(builder)) break;
      // yaml-cpp can report empty documents forever without consuming input (e.g. a stray ','
      // at the top level); treat a document that does not advance as a syntax error.
      if (builder.start().pos <= last_start) {
        const YAML::Mark& m = builder.start();
        std::string what = static_cast<std::size_t>(m.pos) < text.size()
                               ? "unexpected character '" +
                                     std::string(1, text[static_cast<std::size_t>(m.pos)]) + "'"
                               : "unexpected end of stream";
        return Status::InvalidArgument(Position(m) + ": " + what);
      }
      last_start = builder.start().pos;
      if (!builder.has_root() || builder.root().IsNull()) continue;
      static_cast<Value&>(doc) = std::move(builder.root());
      out->push_back(std::move(doc));
      if (++non_null >= stop_after_non_null) break;
    }
  } catch (const Abort& abort) {
    return abort.status;
  } catch (const YAML::DeepRecursion& e) {
    return Status::ResourceExhausted(Position(e.mark) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Position(e.mark) + ": " + e.msg);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("yaml: out of memory while converting the document");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("yaml: ") + e.what());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Emitter.

bool IsPlainSafe(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '-';
    if (!ok) return false;
  }
  char first = s.front();
  if (first == '-' || first == '.') return false;
  return ResolvePlainScalar(std::string(s)).kind == ScalarKind::kString;
}

void EmitScalar(const Value& v, std::string& out) {
  if (v.IsString()) {
    std::string_view s = JsonStringView(v);
    if (IsPlainSafe(s)) {
      out.append(s);
    } else {
      out += ToJson(v);  // JSON escapes are valid YAML double-quoted escapes
    }
  } else {
    out += ToJson(v);
  }
}

bool IsEmptyContainer(const Value& v) {
  return (v.IsObject() && v.MemberCount() == 0) || (v.IsArray() && v.Empty());
}

void EmitNode(const Value& v, int indent, std::string& out);

void EmitObjectBody(const Value& v, int indent, bool first_inline, std::string& out) {
  bool first = true;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    if (!(first && first_inline)) out.append(static_cast<std::size_t>(indent), ' ');
    first = false;
    EmitScalar(it->name, out);
    out += ':';
    const Value& child = it->value;
    if (IsEmptyContainer(child) || (!child.IsObject() && !child.IsArray())) {
      out += ' ';
      if (child.IsObject()) {
        out += "{}";
      } else if (child.IsArray()) {
        out += "[]";
      } else {
        EmitScalar(child, out);
      }
      out += '\n';
    } else if (child.IsObject()) {
      out += '\n';
      EmitNode(child, indent + 2, out);
    } else {
      out += '\n';
      EmitNode(child, indent, out);  // sequences in maps are not indented (go-yaml style)
    }
  }
}

void EmitArrayBody(const Value& v, int indent, std::string& out) {
  for (const auto& e : v.GetArray()) {
    out.append(static_cast<std::size_t>(indent), ' ');
    out += '-';
    if (IsEmptyContainer(e) || (!e.IsObject() && !e.IsArray())) {
      out += ' ';
      if (e.IsObject()) {
        out += "{}";
      } else if (e.IsArray()) {
        out += "[]";
      } else {
        EmitScalar(e, out);
      }
      out += '\n';
    } else if (e.IsObject()) {
      out += ' ';
      EmitObjectBody(e, indent + 2, true, out);
    } else {
      out += '\n';
      EmitArrayBody(e, indent + 2, out);
    }
  }
}

void EmitNode(const Value& v, int indent, std::string& out) {
  if (IsEmptyContainer(v) || (!v.IsObject() && !v.IsArray())) {
    out.append(static_cast<std::size_t>(indent), ' ');
    if (v.IsObject()) {
      out += "{}";
    } else if (v.IsArray()) {
      out += "[]";
    } else {
      EmitScalar(v, out);
    }
    out += '\n';
  } else if (v.IsObject()) {
    EmitObjectBody(v, indent, false, out);
  } else {
    EmitArrayBody(v, indent, out);
  }
}

}  // namespace

Result<rapidjson::Document> ParseYamlToJson(std::string_view body, int max_depth) {
  std::vector<rapidjson::Document> docs;
  Status s = ConvertDocuments(body, max_depth, &docs, 2);
  if (!s.ok()) return s;
  if (docs.size() > 1) {
    return Status::InvalidArgument(
        "yaml: expected a single document, found more than one (use a list or send them "
        "separately)");
  }
  if (docs.empty()) return rapidjson::Document();
  return std::move(docs.front());
}

Result<std::vector<rapidjson::Document>> ParseYamlStream(std::string_view body, int max_depth) {
  std::vector<rapidjson::Document> docs;
  Status s = ConvertDocuments(body, max_depth, &docs, std::numeric_limits<std::size_t>::max());
  if (!s.ok()) return s;
  return docs;
}

std::string ToYaml(const rapidjson::Value& value) {
  std::string out;
  EmitNode(value, 0, out);
  return out;
}

}  // namespace rc::apimachinery
