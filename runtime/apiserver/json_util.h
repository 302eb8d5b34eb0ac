// Small helpers over rapidjson for Kubernetes objects (internal to the API server).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rc::apiserver {

using JsonDoc = rapidjson::Document;
using JsonValue = rapidjson::Value;
using JsonAlloc = rapidjson::Document::AllocatorType;

inline JsonValue Str(std::string_view s, JsonAlloc& a) {
  return JsonValue(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// The member `name` of object `v`, or nullptr.
inline const JsonValue* Member(const JsonValue& v, std::string_view name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(JsonValue(rapidjson::StringRef(name.data(), name.size())));
  return it == v.MemberEnd() ? nullptr : &it->value;
}
inline JsonValue* Member(JsonValue& v, std::string_view name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(JsonValue(rapidjson::StringRef(name.data(), name.size())));
  return it == v.MemberEnd() ? nullptr : &it->value;
}

// Follows a dotted path ("spec.template.metadata"); nullptr if any step is missing.
inline const JsonValue* Path(const JsonValue& v, std::string_view dotted) {
  const JsonValue* cur = &v;
  while (cur) {
    size_t dot = dotted.find('.');
    cur = Member(*cur, dotted.substr(0, dot));
    if (dot == std::string_view::npos) break;
    dotted = dotted.substr(dot + 1);
  }
  return cur;
}

inline std::string StrAt(const JsonValue& v, std::string_view dotted, std::string fallback = "") {
  const JsonValue* p = Path(v, dotted);
  if (p && p->IsString()) return std::string(p->GetString(), p->GetStringLength());
  return fallback;
}

inline std::optional<int64_t> IntAt(const JsonValue& v, std::string_view dotted) {
  const JsonValue* p = Path(v, dotted);
  if (p && p->IsInt64()) return p->GetInt64();
  if (p && p->IsDouble()) return static_cast<int64_t>(p->GetDouble());
  return std::nullopt;
}

// Sets (replacing) member `name` of object `obj`.
inline void Set(JsonValue& obj, std::string_view name, JsonValue value, JsonAlloc& a) {
  if (JsonValue* m = Member(obj, name)) {
    *m = std::move(value);
    return;
  }
  obj.AddMember(Str(name, a), std::move(value), a);
}

inline void Remove(JsonValue& obj, std::string_view name) {
  if (obj.IsObject()) obj.RemoveMember(JsonValue(rapidjson::StringRef(name.data(), name.size())));
}

// The object member `name`, created (or replaced if not an object) as {} when needed.
inline JsonValue& ObjectMember(JsonValue& obj, std::string_view name, JsonAlloc& a) {
  JsonValue* m = Member(obj, name);
  if (!m) {
    obj.AddMember(Str(name, a), JsonValue(rapidjson::kObjectType), a);
    m = Member(obj, name);
  } else if (!m->IsObject()) {
    m->SetObject();
  }
  return *m;
}

inline std::string ToJson(const JsonValue& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// Escapes `s` as a JSON string literal (with quotes).
inline std::string Quote(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

// Seconds since the epoch <-> RFC 3339 UTC ("2026-01-02T03:04:05Z").
std::string FormatTimestamp(int64_t unix_seconds);
std::optional<int64_t> ParseTimestamp(std::string_view rfc3339);
int64_t NowSeconds();
// A random RFC 4122 version 4 UUID.
std::string NewUid();
// Kubernetes' generateName suffix: 5 characters from [bcdfghjklmnpqrstvwxz2456789].
std::string RandomNameSuffix();
// "5s", "3m", "2d4h": kubectl's short human duration.
std::string HumanDuration(int64_t seconds);

}  // namespace rc::apiserver
