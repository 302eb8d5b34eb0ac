#include "rc/apimachinery/json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rc::apimachinery {

namespace {

// Forwards SAX events into the document's builder while enforcing a maximum nesting depth.
class DepthLimitedHandler {
 public:
  DepthLimitedHandler(rapidjson::Document& doc, int max_depth) : doc_(doc), max_depth_(max_depth) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType len, bool copy) {
    return doc_.RawNumber(s, len, copy);
  }
  bool String(const char* s, rapidjson::SizeType len, bool copy) {
    return doc_.String(s, len, copy);
  }
  bool Key(const char* s, rapidjson::SizeType len, bool copy) { return doc_.Key(s, len, copy); }
  bool StartObject() { return Enter() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return Enter() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  bool exceeded() const { return exceeded_; }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      exceeded_ = true;
      return false;
    }
    return true;
  }

  rapidjson::Document& doc_;
  int max_depth_;
  int depth_ = 0;
  bool exceeded_ = false;
};

constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseFullPrecisionFlag;

std::string ParseErrorMessage(std::string_view body, std::size_t offset,
                              const std::string& reason) {
  return "invalid JSON at " + LineColumn(body, offset) + " (offset " + std::to_string(offset) +
         "): " + reason;
}

// Rebuilds an object without duplicate keys: the last value wins, at the first key's position.
void DedupOne(rapidjson::Value& obj, rapidjson::Document::AllocatorType& a) {
  const rapidjson::SizeType n = obj.MemberCount();
  if (n < 2) return;
  auto begin = obj.MemberBegin();
  bool dup = false;
  std::unordered_map<std::string_view, rapidjson::SizeType> first;
  if (n <= 16) {
    for (rapidjson::SizeType i = 1; i < n && !dup; ++i) {
      for (rapidjson::SizeType j = 0; j < i && !dup; ++j) {
        dup = JsonStringView(begin[i].name) == JsonStringView(begin[j].name);
      }
    }
  } else {
    first.reserve(n);
    for (rapidjson::SizeType i = 0; i < n && !dup; ++i) {
      dup = !first.emplace(JsonStringView(begin[i].name), i).second;
    }
  }
  if (!dup) return;
  // Move the last value of each duplicated key into its first slot, then drop later slots.
  std::vector<bool> keep(n, true);
  first.clear();
  for (rapidjson::SizeType i = 0; i < n; ++i) {
    auto [pos, inserted] = first.emplace(JsonStringView(begin[i].name), i);
    if (!inserted) {
      begin[pos->second].value.Swap(begin[i].value);
      keep[i] = false;
    }
  }
  rapidjson::Value rebuilt(rapidjson::kObjectType);
  for (rapidjson::SizeType i = 0; i < n; ++i) {
    if (keep[i]) rebuilt.AddMember(begin[i].name, begin[i].value, a);  // moves
  }
  obj.Swap(rebuilt);
}

bool EqualImpl(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.IsNumber() && b.IsNumber()) {
    if (a.IsDouble() || b.IsDouble()) {
      double x = a.GetDouble(), y = b.GetDouble();
      return x == y;
    }
    // Both integral: compare signed/unsigned correctly.
    if (a.IsInt64() && b.IsInt64()) return a.GetInt64() == b.GetInt64();
    if (a.IsUint64() && b.IsUint64()) return a.GetUint64() == b.GetUint64();
    return false;
  }
  if (a.GetType() != b.GetType()) {
    // kTrueType vs kFalseType are different types: fine.
    return false;
  }
  switch (a.GetType()) {
    case rapidjson::kNullType:
    case rapidjson::kTrueType:
    case rapidjson::kFalseType:
      return true;
    case rapidjson::kStringType:
      return JsonStringView(a) == JsonStringView(b);
    case rapidjson::kArrayType: {
      if (a.Size() != b.Size()) return false;
      for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
        if (!EqualImpl(a[i], b[i])) return false;
      }
      return true;
    }
    case rapidjson::kObjectType: {
      if (a.MemberCount() != b.MemberCount()) return false;
      for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
        const rapidjson::Value* other = FindMember(b, JsonStringView(it->name));
        if (other == nullptr || !EqualImpl(it->value, *other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

std::string LineColumn(std::string_view text, std::size_t offset) {
  if (offset > text.size()) offset = text.size();
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

Result<rapidjson::Document> ParseJson(std::string_view body, int max_depth) {
  if (max_depth < 1) max_depth = 1;
  rapidjson::Document doc;
  rapidjson::MemoryStream ms(body.data(), body.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  rapidjson::Reader reader;
  DepthLimitedHandler handler(doc, max_depth);
  rapidjson::ParseResult result;
  auto generator = [&](rapidjson::Document& d) -> bool {
    (void)d;
    result = reader.Parse<kParseFlags>(is, handler);
    return !result.IsError();
  };
  doc.Populate(generator);
  if (handler.exceeded()) {
    return Status::ResourceExhausted("invalid JSON at " + LineColumn(body, result.Offset()) +
                                     ": nesting depth exceeds the maximum of " +
                                     std::to_string(max_depth));
  }
  if (result.IsError()) {
    std::size_t offset = result.Offset();
    std::string reason = rapidjson::GetParseError_En(result.Code());
    if (result.Code() == rapidjson::kParseErrorDocumentEmpty && body.empty()) reason = "empty body";
    return Status::InvalidArgument(ParseErrorMessage(body, offset, reason));
  }
  // MemoryStream reports '\0' at the end of input, so an embedded NUL ends the document early.
  if (is.Tell() < body.size()) {
    return Status::InvalidArgument(ParseErrorMessage(body, is.Tell(), "unexpected NUL byte"));
  }
  DeduplicateObjectKeys(doc, doc.GetAllocator());
  return doc;
}

void DeduplicateObjectKeys(rapidjson::Value& value, rapidjson::Document::AllocatorType& allocator) {
  std::vector<rapidjson::Value*> stack{&value};
  while (!stack.empty()) {
    rapidjson::Value* v = stack.back();
    stack.pop_back();
    if (v->IsObject()) {
      DedupOne(*v, allocator);
      auto members = v->MemberBegin();
      for (rapidjson::SizeType i = 0; i < v->MemberCount(); ++i) {
        rapidjson::Value& child = members[i].value;
        if (child.IsObject() || child.IsArray()) stack.push_back(&child);
      }
    } else if (v->IsArray()) {
      for (auto& e : v->GetArray()) {
        if (e.IsObject() || e.IsArray()) stack.push_back(&e);
      }
    }
  }
}

int JsonDepth(const rapidjson::Value& value) {
  int max_depth = 0;
  std::vector<std::pair<const rapidjson::Value*, int>> stack{{&value, 0}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (v->IsObject()) {
      max_depth = std::max(max_depth, d + 1);
      for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it)
        stack.push_back({&it->value, d + 1});
    } else if (v->IsArray()) {
      max_depth = std::max(max_depth, d + 1);
      for (const auto& e : v->GetArray()) stack.push_back({&e, d + 1});
    }
  }
  return max_depth;
}

std::string ToJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string ToPrettyJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b) { return EqualImpl(a, b); }

const rapidjson::Value* FindMember(const rapidjson::Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    if (JsonStringView(it->name) == name) return &it->value;
  }
  return nullptr;
}

rapidjson::Value* FindMember(rapidjson::Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  auto members = object.MemberBegin();
  for (rapidjson::SizeType i = 0; i < object.MemberCount(); ++i) {
    if (JsonStringView(members[i].name) == name) return &members[i].value;
  }
  return nullptr;
}

std::string_view GetStringOr(const rapidjson::Value& object, std::string_view name,
                             std::string_view fallback) {
  const rapidjson::Value* v = FindMember(object, name);
  if (v == nullptr || !v->IsString()) return fallback;
  return JsonStringView(*v);
}

}  // namespace rc::apimachinery
