// The rc runtime: the functions of runtime_abi.def over rapidjson values.
#include "rc/stdlib/runtime.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <ctime>
#include <mutex>

#include "rc/apimachinery/quantity.h"
#include "rc/apimachinery/selector.h"

using rapidjson::Value;
using rc::apimachinery::LabelSelector;

rc_ctx::rc_ctx() = default;
rc_ctx::~rc_ctx() = default;

void rc_ctx::Reset() {
  selector_cache.clear();
  selector_text_cache.clear();
  arena.Clear();
  requeue_after_ns = -1;
  trap_code = -1;
  trap_message.clear();
}

namespace {

using V = rc_value;

// Traps. A trap longjmps to rc::rt::Invoke, skipping destructors, so it is two steps: SetTrap
// records the message (its temporaries die at the end of that statement), then Raise jumps from a
// frame that holds nothing. Every extern "C" function below that can trap keeps its destructible
// locals inside helpers that have returned before it calls Raise.
void SetTrap(rc_ctx* ctx, int32_t code, std::string_view message) {
  ctx->trap_code = code;
  ctx->trap_message.assign(message.data(), message.size());
}

[[noreturn]] __attribute__((noinline)) void Raise(rc_ctx* ctx) {
  if (ctx->trap_target) std::longjmp(*ctx->trap_target, 1);
  fprintf(stderr, "rc: trap outside rc::rt::Invoke: %s\n", ctx->trap_message.c_str());
  std::abort();
}

V* New(rc_ctx* ctx) { return new (ctx->arena.Malloc(sizeof(V))) V(); }

std::string_view Sv(const V* v) {
  if (!v || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

V* NewString(rc_ctx* ctx, std::string_view s) {
  V* v = New(ctx);
  v->SetString(s.data(), static_cast<rapidjson::SizeType>(s.size()), ctx->arena);
  return v;
}

V* Copy(rc_ctx* ctx, const V* v) {
  V* out = New(ctx);
  if (v) out->CopyFrom(*v, ctx->arena);
  return out;
}

// Appends `value` to `list` without copying it: the new element is a bitwise alias of *value
// (same members/elements/string storage). Sound because (1) values are immutable once built:
// the only in-place mutations are of fresh values (rc_object_set/rc_list_push on what
// rc_new_object/rc_new_list just made; rc_merge deep-copies its base first), never of list
// elements; (2) the arena's allocator never frees (MemoryPoolAllocator::kNeedFree is false), so no
// destructor ever releases storage through an alias; (3) what is aliased lives at least as long
// as the call: arena values, and host objects (pinned for the call by the EffectHost contract).
// Turns list(), +, take, reverse and sortBy from deep copies into O(n) pointer moves.
static_assert(!rapidjson::MemoryPoolAllocator<>::kNeedFree, "aliasing relies on an arena that never frees");
void PushAlias(rc_ctx* ctx, V* list, const V* value) {
  V val;
  if (value) std::memcpy(static_cast<void*>(&val), static_cast<const void*>(value), sizeof(V));
  list->PushBack(val, ctx->arena);  // moves the alias in; val is left null and owns nothing
}

// Go's time.Duration.String(): "1h0m0s", "2m30s", "1.5s", "100ms", "0s".
std::string FormatDuration(int64_t ns) {
  if (ns == 0) return "0s";
  std::string out;
  uint64_t u = ns < 0 ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  if (ns < 0) out = "-";
  if (u < 1000000000ULL) {
    char buf[64];
    if (u < 1000ULL) snprintf(buf, sizeof buf, "%lluns", static_cast<unsigned long long>(u));
    else if (u < 1000000ULL) snprintf(buf, sizeof buf, "%gµs", u / 1e3);
    else snprintf(buf, sizeof buf, "%gms", u / 1e6);
    return out + buf;
  }
  uint64_t h = u / 3600000000000ULL;
  uint64_t m = (u / 60000000000ULL) % 60;
  uint64_t s_ns = u % 60000000000ULL;
  char secs[64];
  if (s_ns % 1000000000ULL == 0) snprintf(secs, sizeof secs, "%llus", static_cast<unsigned long long>(s_ns / 1000000000ULL));
  else snprintf(secs, sizeof secs, "%.9gs", s_ns / 1e9);
  if (h > 0) out += std::to_string(h) + "h" + std::to_string(m) + "m";
  else if (m > 0) out += std::to_string(m) + "m";
  return out + secs;
}

bool ParseDuration(std::string_view s, int64_t* ns) {
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') { neg = s[0] == '-'; s.remove_prefix(1); }
  if (s == "0") { *ns = 0; return true; }
  double total = 0;
  size_t i = 0;
  if (s.empty()) return false;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (start == i) return false;
    double n = std::strtod(std::string(s.substr(start, i - start)).c_str(), nullptr);
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i])) ) ++i;
    std::string_view unit = s.substr(u, i - u);
    double mult;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "µs") mult = 1e3;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "s") mult = 1e9;
    else if (unit == "m") mult = 60e9;
    else if (unit == "h") mult = 3600e9;
    else return false;
    total += n * mult;
  }
  if (total > 9.2e18) return false;
  *ns = static_cast<int64_t>(neg ? -total : total);
  return true;
}

bool ParseRfc3339(std::string_view s, int64_t* secs) {
  int y, mo, d, h, mi, se;
  std::string str(s);
  if (sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  int64_t t = timegm(&tm);
  size_t pos = 19;
  if (pos < str.size() && str[pos] == '.') {
    ++pos;
    while (pos < str.size() && std::isdigit(static_cast<unsigned char>(str[pos]))) ++pos;
  }
  if (pos < str.size() && (str[pos] == '+' || str[pos] == '-')) {
    int oh = 0, om = 0;
    if (sscanf(str.c_str() + pos + 1, "%2d:%2d", &oh, &om) == 2) {
      int64_t off = oh * 3600 + om * 60;
      t += str[pos] == '+' ? -off : off;
    }
  }
  *secs = t;
  return true;
}

std::string FormatRfc3339(int64_t secs) {
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NumberText(const V& v) {
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  double d = v.GetDouble();
  if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  char buf[32];
  snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

std::string Text(const V* v) {
  if (!v || v->IsNull()) return "";
  if (v->IsString()) return std::string(Sv(v));
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  if (v->IsNumber()) return NumberText(*v);
  return rc::rt::ToJson(v);
}

// RFC 7386 JSON merge patch, applied in place: objects merge key by key, null removes a key,
// anything else (lists included) replaces.
void MergeInto(rc_ctx* ctx, V& base, const V& patch) {
  if (!patch.IsObject()) {
    base.CopyFrom(patch, ctx->arena);
    return;
  }
  if (!base.IsObject()) base.SetObject();
  for (auto& m : patch.GetObject()) {
    auto it = base.FindMember(m.name);
    if (m.value.IsNull()) {
      if (it != base.MemberEnd()) base.EraseMember(it);  // keeps member order
      continue;
    }
    if (it == base.MemberEnd()) {
      V key(m.name, ctx->arena);
      V val;
      MergeInto(ctx, val, m.value);  // strips nulls nested in a new object
      base.AddMember(key, val, ctx->arena);
    } else {
      MergeInto(ctx, it->value, m.value);
    }
  }
}

int Compare(const V* a, const V* b) {
  bool an = !a || a->IsNull(), bn = !b || b->IsNull();
  if (an || bn) return an == bn ? 0 : (an ? -1 : 1);
  if (a->IsNumber() && b->IsNumber()) {
    if (a->IsInt64() && b->IsInt64()) {
      int64_t x = a->GetInt64(), y = b->GetInt64();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    double x = a->GetDouble(), y = b->GetDouble();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a->IsString() && b->IsString()) {
    int c = Sv(a).compare(Sv(b));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a->IsBool() && b->IsBool()) return static_cast<int>(a->GetBool()) - static_cast<int>(b->GetBool());
  std::string x = rc::rt::ToJson(a), y = rc::rt::ToJson(b);
  int c = x.compare(y);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// Absent values read as zero values: null equals "", 0, false, [] and {} as well as null.
bool IsZero(const V& v) {
  return v.IsNull() || (v.IsString() && v.GetStringLength() == 0) || (v.IsNumber() && v.GetDouble() == 0) ||
         (v.IsBool() && !v.GetBool()) || (v.IsArray() && v.Empty()) || (v.IsObject() && v.ObjectEmpty());
}

bool Equal(const V* a, const V* b) {
  bool an = !a || a->IsNull(), bn = !b || b->IsNull();
  if (an && bn) return true;
  if (an) return IsZero(*b);
  if (bn) return IsZero(*a);
  if (a->IsNumber() && b->IsNumber()) return Compare(a, b) == 0;
  return *a == *b;
}

uint32_t Fnv32(std::string_view s, uint32_t h = 2166136261u) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

template <typename Writer>
void WriteCanonical(const V& v, Writer& w) {
  switch (v.GetType()) {
    case rapidjson::kObjectType: {
      std::vector<const V::Member*> members;
      members.reserve(v.MemberCount());
      for (auto& m : v.GetObject()) members.push_back(&m);
      std::sort(members.begin(), members.end(), [](const V::Member* a, const V::Member* b) {
        return Sv(&a->name) < Sv(&b->name);
      });
      w.StartObject();
      for (const V::Member* m : members) {
        w.Key(m->name.GetString(), m->name.GetStringLength());
        WriteCanonical(m->value, w);
      }
      w.EndObject();
      break;
    }
    case rapidjson::kArrayType:
      w.StartArray();
      for (auto& item : v.GetArray()) WriteCanonical(item, w);
      w.EndArray();
      break;
    case rapidjson::kNumberType:
      if (v.IsInt64()) {
        w.Int64(v.GetInt64());
      } else if (v.IsUint64()) {
        w.Uint64(v.GetUint64());
      } else {
        double d = v.GetDouble();
        if (std::floor(d) == d && std::fabs(d) < 9.0e18) w.Int64(static_cast<int64_t>(d));
        else w.Double(d);
      }
      break;
    default:
      v.Accept(w);
  }
}

// Helpers for the trapping functions: on failure they record the trap (SetTrap) and return
// false; their locals are gone by the time the caller Raises.
bool QuantityMilli(rc_ctx* ctx, const V& v, int64_t* milli) {
  auto q = rc::apimachinery::ParseQuantityJson(v);
  if (!q.ok()) {
    SetTrap(ctx, RC_TRAP_INVALID_VALUE, "invalid quantity " + Text(&v) + ": " + q.status().message());
    return false;
  }
  *milli = q->MilliValue();
  return true;
}

bool ParseIntText(rc_ctx* ctx, std::string_view text, int64_t* out) {
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE) {
    SetTrap(ctx, RC_TRAP_INVALID_VALUE, "not an integer: \"" + s + "\"");
    return false;
  }
  *out = x;
  return true;
}

bool ParseFloatText(rc_ctx* ctx, std::string_view text, double* out) {
  std::string s(text);
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') {
    SetTrap(ctx, RC_TRAP_INVALID_VALUE, "not a number: \"" + s + "\"");
    return false;
  }
  *out = x;
  return true;
}

// Parsed selector strings, shared by every call in the process (reconcilers parse the same few
// strings over and over). Bounded: cleared when it grows past kMaxSelectorTexts.
constexpr size_t kMaxSelectorTexts = 4096;
std::mutex g_selector_mu;
std::unordered_map<std::string, std::shared_ptr<const LabelSelector>>& GlobalSelectors() {
  static auto* map = new std::unordered_map<std::string, std::shared_ptr<const LabelSelector>>();
  return *map;
}

// The parsed selector for `text` (cached in ctx and process-wide), or nullptr after SetTrap.
const LabelSelector* SelectorFromText(rc_ctx* ctx, std::string_view text) {
  std::string key(text);
  auto it = ctx->selector_text_cache.find(key);
  if (it != ctx->selector_text_cache.end()) return it->second.get();
  std::shared_ptr<const LabelSelector> sel;
  {
    std::lock_guard<std::mutex> lock(g_selector_mu);
    auto g = GlobalSelectors().find(key);
    if (g != GlobalSelectors().end()) sel = g->second;
  }
  if (!sel) {
    auto parsed = rc::apimachinery::ParseLabelSelector(text);
    if (!parsed.ok()) {
      SetTrap(ctx, RC_TRAP_BAD_SELECTOR, "invalid label selector \"" + key + "\": " + parsed.status().message());
      return nullptr;
    }
    sel = std::make_shared<const LabelSelector>(std::move(*parsed));
    std::lock_guard<std::mutex> lock(g_selector_mu);
    auto& global = GlobalSelectors();
    if (global.size() >= kMaxSelectorTexts) global.clear();
    global.emplace(key, sel);
  }
  const LabelSelector* raw = sel.get();
  ctx->selector_text_cache.emplace(std::move(key), std::move(sel));
  return raw;
}

V* EffectList(rc_ctx* ctx, const V* api_version, const V* kind, const V* ns, const V* selector,
              const V* labels, const V* owner);
bool EffectWrite(rc_ctx* ctx, int32_t op, const V& obj, const V* patch);

}  // namespace

extern "C" {

// ---- reading ----
const V* rc_get(const V* obj, const char* key, int64_t len) {
  if (!obj || !obj->IsObject()) return nullptr;
  auto it = obj->FindMember(V(rapidjson::StringRef(key, static_cast<rapidjson::SizeType>(len))));
  return it == obj->MemberEnd() ? nullptr : &it->value;
}
const V* rc_get_key(const V* obj, const V* key) {
  if (!key || !key->IsString()) return nullptr;
  return rc_get(obj, key->GetString(), key->GetStringLength());
}
uint8_t rc_is_null(const V* v) { return !v || v->IsNull(); }
int64_t rc_as_int(const V* v, int64_t dflt) {
  if (!v) return dflt;
  if (v->IsInt64()) return v->GetInt64();
  if (v->IsNumber()) return static_cast<int64_t>(v->GetDouble());
  if (v->IsString()) {
    char* end = nullptr;
    std::string s(Sv(v));
    long long x = std::strtoll(s.c_str(), &end, 10);
    if (end && *end == '\0' && !s.empty()) return x;
  }
  return dflt;
}
double rc_as_float(const V* v, double dflt) { return v && v->IsNumber() ? v->GetDouble() : dflt; }
uint8_t rc_as_bool(const V* v, uint8_t dflt) { return v && v->IsBool() ? v->GetBool() : dflt; }
int64_t rc_as_duration(rc_ctx* ctx, const V* v) {
  if (!v || v->IsNull()) return 0;
  if (v->IsNumber()) return rc_as_int(v, 0) * 1000000000;
  int64_t ns = 0;
  if (!ParseDuration(Sv(v), &ns)) {
    SetTrap(ctx, RC_TRAP_INVALID_VALUE, "invalid duration \"" + std::string(Sv(v)) + "\"");
    Raise(ctx);
  }
  return ns;
}
int64_t rc_as_timestamp(rc_ctx* ctx, const V* v) {
  if (!v || v->IsNull()) return 0;
  if (v->IsNumber()) return rc_as_int(v, 0);
  int64_t secs = 0;
  if (!ParseRfc3339(Sv(v), &secs)) {
    SetTrap(ctx, RC_TRAP_INVALID_VALUE, "invalid timestamp \"" + std::string(Sv(v)) + "\"");
    Raise(ctx);
  }
  return secs;
}
int64_t rc_as_quantity(rc_ctx* ctx, const V* v) {
  if (!v || v->IsNull()) return 0;
  int64_t milli = 0;
  if (!QuantityMilli(ctx, *v, &milli)) Raise(ctx);
  return milli;
}

// ---- building ----
V* rc_new_null(rc_ctx* ctx) { return New(ctx); }
V* rc_new_int(rc_ctx* ctx, int64_t x) { V* v = New(ctx); v->SetInt64(x); return v; }
V* rc_new_float(rc_ctx* ctx, double x) { V* v = New(ctx); v->SetDouble(x); return v; }
V* rc_new_bool(rc_ctx* ctx, uint8_t x) { V* v = New(ctx); v->SetBool(x != 0); return v; }
V* rc_new_string(rc_ctx* ctx, const char* s, int64_t len) { return NewString(ctx, std::string_view(s, len)); }
V* rc_box_duration(rc_ctx* ctx, int64_t ns) { return NewString(ctx, FormatDuration(ns)); }
V* rc_box_timestamp(rc_ctx* ctx, int64_t secs) { return NewString(ctx, FormatRfc3339(secs)); }
V* rc_box_quantity(rc_ctx* ctx, int64_t milli) {
  return NewString(ctx, rc::apimachinery::Quantity::FromMilli(milli).ToString());
}
V* rc_new_object(rc_ctx* ctx) { V* v = New(ctx); v->SetObject(); return v; }
void rc_object_set(rc_ctx* ctx, V* obj, const char* key, int64_t len, const V* value) {
  if (!value || !obj || !obj->IsObject()) return;
  V k(key, static_cast<rapidjson::SizeType>(len), ctx->arena);
  auto it = obj->FindMember(k);
  if (it != obj->MemberEnd()) {
    it->value.CopyFrom(*value, ctx->arena);
  } else {
    V val(*value, ctx->arena);
    obj->AddMember(k, val, ctx->arena);
  }
}
V* rc_new_list(rc_ctx* ctx) { V* v = New(ctx); v->SetArray(); return v; }
void rc_list_push(rc_ctx* ctx, V* list, const V* value) {
  if (!list || !list->IsArray()) return;
  V val;
  if (value) val.CopyFrom(*value, ctx->arena);
  list->PushBack(val, ctx->arena);
}
int64_t rc_list_len(const V* v) { return v && v->IsArray() ? v->Size() : 0; }
const V* rc_list_at(rc_ctx* ctx, const V* list, int64_t i) {
  int64_t n = rc_list_len(list);
  if (i < 0 || i >= n) {
    SetTrap(ctx, RC_TRAP_INDEX, "index " + std::to_string(i) + " out of range for a list of " + std::to_string(n));
    Raise(ctx);
  }
  return &(*list)[static_cast<rapidjson::SizeType>(i)];
}
int64_t rc_map_len(const V* v) { return v && v->IsObject() ? v->MemberCount() : 0; }
const V* rc_map_key_at(rc_ctx* ctx, const V* m, int64_t i) {
  int64_t n = rc_map_len(m);
  if (i < 0 || i >= n) {
    SetTrap(ctx, RC_TRAP_INDEX, "entry " + std::to_string(i) + " out of range for a map of " + std::to_string(n));
    Raise(ctx);
  }
  return &(m->MemberBegin() + i)->name;
}
const V* rc_map_value_at(const V* m, int64_t i) {
  if (i < 0 || i >= rc_map_len(m)) return nullptr;
  return &(m->MemberBegin() + i)->value;
}
V* rc_merge(rc_ctx* ctx, const V* base, const V* overrides) {
  V* out = Copy(ctx, base);
  if (!base || base->IsNull()) out->SetObject();
  if (overrides) MergeInto(ctx, *out, *overrides);
  return out;
}

// ---- strings ----
V* rc_str_concat(rc_ctx* ctx, const V* a, const V* b) {
  std::string_view x = Sv(a), y = Sv(b);
  V* v = New(ctx);
  size_t n = x.size() + y.size();
  char* buf = static_cast<char*>(ctx->arena.Malloc(n + 1));
  if (!x.empty()) memcpy(buf, x.data(), x.size());
  if (!y.empty()) memcpy(buf + x.size(), y.data(), y.size());
  buf[n] = '\0';
  v->SetString(rapidjson::StringRef(buf, static_cast<rapidjson::SizeType>(n)));
  return v;
}
int64_t rc_str_len(const V* v) { return static_cast<int64_t>(Sv(v).size()); }
int32_t rc_str_cmp(const V* a, const V* b) {
  int c = Sv(a).compare(Sv(b));
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}
uint8_t rc_str_contains(const V* a, const V* b) { return Sv(a).find(Sv(b)) != std::string_view::npos; }
uint8_t rc_str_starts_with(const V* a, const V* b) { auto x = Sv(a), y = Sv(b); return x.substr(0, y.size()) == y; }
uint8_t rc_str_ends_with(const V* a, const V* b) {
  auto x = Sv(a), y = Sv(b);
  return x.size() >= y.size() && x.substr(x.size() - y.size()) == y;
}
V* rc_str_lower(rc_ctx* ctx, const V* a) {
  std::string s(Sv(a));
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return NewString(ctx, s);
}
V* rc_str_upper(rc_ctx* ctx, const V* a) {
  std::string s(Sv(a));
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return NewString(ctx, s);
}
V* rc_str_trim(rc_ctx* ctx, const V* a) {
  std::string_view s = Sv(a);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return NewString(ctx, s);
}
V* rc_str_split(rc_ctx* ctx, const V* a, const V* sep) {
  V* list = rc_new_list(ctx);
  std::string_view s = Sv(a), d = Sv(sep);
  if (d.empty()) {
    for (char c : s) {
      V item(&c, 1, ctx->arena);
      list->PushBack(item, ctx->arena);
    }
    return list;
  }
  size_t pos = 0;
  while (true) {
    size_t next = s.find(d, pos);
    std::string_view part = s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    V item(part.data(), static_cast<rapidjson::SizeType>(part.size()), ctx->arena);
    list->PushBack(item, ctx->arena);
    if (next == std::string_view::npos) break;
    pos = next + d.size();
  }
  return list;
}
V* rc_str_replace(rc_ctx* ctx, const V* a, const V* from, const V* to) {
  std::string s(Sv(a));
  std::string_view f = Sv(from), t = Sv(to);
  if (f.empty()) return NewString(ctx, s);
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(f, pos);
    if (next == std::string::npos) { out.append(s, pos, std::string::npos); break; }
    out.append(s, pos, next - pos);
    out.append(t);
    pos = next + f.size();
  }
  return NewString(ctx, out);
}
V* rc_list_join(rc_ctx* ctx, const V* list, const V* sep) {
  std::string out;
  std::string_view d = Sv(sep);
  for (int64_t i = 0; i < rc_list_len(list); ++i) {
    if (i) out.append(d);
    out += Text(&(*list)[static_cast<rapidjson::SizeType>(i)]);
  }
  return NewString(ctx, out);
}
V* rc_to_string(rc_ctx* ctx, const V* v) {
  if (v && v->IsString()) return const_cast<V*>(v);
  return NewString(ctx, Text(v));
}
V* rc_int_to_string(rc_ctx* ctx, int64_t x) { return NewString(ctx, std::to_string(x)); }
V* rc_float_to_string(rc_ctx* ctx, double x) {
  V tmp;
  tmp.SetDouble(x);
  return NewString(ctx, NumberText(tmp));
}
int64_t rc_parse_int(rc_ctx* ctx, const V* v) {
  if (v && v->IsNumber()) return rc_as_int(v, 0);
  int64_t x = 0;
  if (!ParseIntText(ctx, Sv(v), &x)) Raise(ctx);
  return x;
}
double rc_parse_float(rc_ctx* ctx, const V* v) {
  if (v && v->IsNumber()) return v->GetDouble();
  double x = 0;
  if (!ParseFloatText(ctx, Sv(v), &x)) Raise(ctx);
  return x;
}

// ---- comparison, lists ----
uint8_t rc_value_eq(const V* a, const V* b) { return Equal(a, b); }
int32_t rc_value_cmp(const V* a, const V* b) { return Compare(a, b); }
uint8_t rc_list_contains(const V* list, const V* item) {
  for (int64_t i = 0; i < rc_list_len(list); ++i) {
    if (Equal(&(*list)[static_cast<rapidjson::SizeType>(i)], item)) return 1;
  }
  return 0;
}
V* rc_list_concat(rc_ctx* ctx, const V* a, const V* b) {
  V* out = rc_new_list(ctx);
  out->Reserve(static_cast<rapidjson::SizeType>(rc_list_len(a) + rc_list_len(b)), ctx->arena);
  for (const V* l : {a, b}) {
    for (int64_t i = 0; i < rc_list_len(l); ++i) PushAlias(ctx, out, &(*l)[static_cast<rapidjson::SizeType>(i)]);
  }
  return out;
}
V* rc_list_take(rc_ctx* ctx, const V* list, int64_t n) {
  V* out = rc_new_list(ctx);
  for (int64_t i = 0; i < rc_list_len(list) && i < n; ++i) PushAlias(ctx, out, &(*list)[static_cast<rapidjson::SizeType>(i)]);
  return out;
}
V* rc_list_reverse(rc_ctx* ctx, const V* list) {
  V* out = rc_new_list(ctx);
  for (int64_t i = rc_list_len(list) - 1; i >= 0; --i) PushAlias(ctx, out, &(*list)[static_cast<rapidjson::SizeType>(i)]);
  return out;
}
V* rc_list_sort_by_keys(rc_ctx* ctx, const V* items, const V* keys) {
  int64_t n = rc_list_len(items);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return Compare(&(*keys)[static_cast<rapidjson::SizeType>(x)], &(*keys)[static_cast<rapidjson::SizeType>(y)]) < 0;
  });
  V* out = rc_new_list(ctx);
  for (int64_t i : order) PushAlias(ctx, out, &(*items)[static_cast<rapidjson::SizeType>(i)]);
  return out;
}
int64_t rc_len_any(const V* v) {
  if (!v) return 0;
  if (v->IsArray()) return v->Size();
  if (v->IsObject()) return v->MemberCount();
  if (v->IsString()) return v->GetStringLength();
  return 0;
}

// ---- selectors ----
uint8_t rc_labels_match(rc_ctx* ctx, const V* selector, const V* labels) {
  // A null or absent selector matches nothing (metav1.LabelSelectorAsSelector). Parsed selectors
  // are cached per call by address: values do not change during a call.
  if (!selector || selector->IsNull()) return 0;
  auto it = ctx->selector_cache.find(selector);
  if (it == ctx->selector_cache.end()) {
    auto parsed = rc::apimachinery::LabelSelectorFromJson(selector);
    std::unique_ptr<LabelSelector> sel =
        parsed.ok() ? std::make_unique<LabelSelector>(std::move(*parsed)) : std::make_unique<LabelSelector>(LabelSelector::Nothing());
    it = ctx->selector_cache.emplace(selector, std::move(sel)).first;
  }
  return it->second->Matches(labels);
}
uint8_t rc_selector_string_match(rc_ctx* ctx, const V* selector, const V* labels) {
  const LabelSelector* sel = SelectorFromText(ctx, Sv(selector));
  if (!sel) Raise(ctx);
  return sel->Matches(labels);
}
V* rc_selector_to_string(rc_ctx* ctx, const V* selector) {
  if (!selector || selector->IsNull()) return NewString(ctx, "");
  auto parsed = rc::apimachinery::LabelSelectorFromJson(selector);
  return NewString(ctx, parsed.ok() ? parsed->ToString() : "");
}

// ---- time, hashing ----
int64_t rc_now(rc_ctx* ctx) {
  if (ctx->now_seconds) return ctx->now_seconds;
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
V* rc_human_duration(rc_ctx* ctx, int64_t ns) {
  // kubectl's duration.HumanDuration.
  int64_t s = ns / 1000000000;
  std::string out;
  if (s < 0) out = "<invalid>";
  else if (s < 60 * 2) out = std::to_string(s) + "s";
  else if (s < 60 * 10) { int64_t m = s / 60, r = s % 60; out = std::to_string(m) + "m" + (r ? std::to_string(r) + "s" : ""); }
  else if (s < 3600 * 3) out = std::to_string(s / 60) + "m";
  else if (s < 3600 * 8) { int64_t h = s / 3600, m = (s % 3600) / 60; out = std::to_string(h) + "h" + (m ? std::to_string(m) + "m" : ""); }
  else if (s < 3600 * 48) out = std::to_string(s / 3600) + "h";
  else if (s < 3600 * 24 * 8) { int64_t d = s / 86400, h = (s % 86400) / 3600; out = std::to_string(d) + "d" + (h ? std::to_string(h) + "h" : ""); }
  else if (s < 3600 * 24 * 365 * 2) out = std::to_string(s / 86400) + "d";
  else if (s < 3600LL * 24 * 365 * 8) { int64_t y = s / (86400 * 365), d = (s % (86400 * 365)) / 86400; out = std::to_string(y) + "y" + (d ? std::to_string(d) + "d" : ""); }
  else out = std::to_string(s / (86400 * 365)) + "y";
  return NewString(ctx, out);
}
int64_t rc_hash(const V* v) { return Fnv32(rc::rt::CanonicalJson(v)); }
V* rc_pod_template_hash(rc_ctx* ctx, const V* v) { return NewString(ctx, rc::rt::PodTemplateHash(v, -1)); }
V* rc_pod_template_hash_n(rc_ctx* ctx, const V* v, int64_t collision_count) {
  return NewString(ctx, rc::rt::PodTemplateHash(v, collision_count));
}

// ---- traps, effects ----
void rc_trap(rc_ctx* ctx, const V* message) {
  SetTrap(ctx, RC_TRAP_FAIL, Text(message));
  Raise(ctx);
}
void rc_trap_code(rc_ctx* ctx, int32_t code) {
  SetTrap(ctx, code, code == RC_TRAP_DIV_ZERO  ? "division by zero"
                     : code == RC_TRAP_OVERFLOW ? "integer overflow"
                                                : "trap " + std::to_string(code));
  Raise(ctx);
}
void rc_trap_with(rc_ctx* ctx, int32_t code, const char* message, int64_t len) {
  SetTrap(ctx, code, std::string_view(message ? message : "", message ? static_cast<size_t>(len) : 0));
  Raise(ctx);
}
const V* rc_effect_get(rc_ctx* ctx, const V* api_version, const V* kind, const V* name, const V* ns) {
  if (!ctx->host) {
    SetTrap(ctx, RC_TRAP_EFFECT, "no effect host: get is only available to controllers");
    Raise(ctx);
  }
  return ctx->host->Get(Text(api_version), Text(kind), Text(name), Text(ns));
}
V* rc_effect_list(rc_ctx* ctx, const V* api_version, const V* kind, const V* ns, const V* selector,
                  const V* labels, const V* owner) {
  if (!ctx->host) {
    SetTrap(ctx, RC_TRAP_EFFECT, "no effect host: list is only available to controllers");
    Raise(ctx);
  }
  return EffectList(ctx, api_version, kind, ns, selector, labels, owner);
}
void rc_effect_write(rc_ctx* ctx, int32_t op, const V* obj, const V* patch) {
  if (!ctx->host) {
    SetTrap(ctx, RC_TRAP_EFFECT, "no effect host: writes are only available to controllers");
    Raise(ctx);
  }
  if (!obj) {
    SetTrap(ctx, RC_TRAP_EFFECT, "write of an absent object");
    Raise(ctx);
  }
  if (!EffectWrite(ctx, op, *obj, patch)) Raise(ctx);
}
void rc_effect_emit(rc_ctx* ctx, const V* obj, const V* type, const V* reason, const V* message) {
  if (!ctx->host) {
    SetTrap(ctx, RC_TRAP_EFFECT, "no effect host: emit is only available to controllers");
    Raise(ctx);
  }
  if (obj) ctx->host->Emit(*obj, Text(type), Text(reason), Text(message));
}
void rc_requeue_after(rc_ctx* ctx, int64_t ns) { ctx->requeue_after_ns = ns; }

// ---- added after the first codegen (runtime_abi.def order) ----
V* rc_copy(rc_ctx* ctx, const V* v) { return v ? Copy(ctx, v) : nullptr; }
const char* rc_str_data(const V* v) { return v && v->IsString() ? v->GetString() : ""; }
uint8_t rc_str_eq(const V* a, const V* b) { return Sv(a) == Sv(b); }
V* rc_bool_to_string(rc_ctx* ctx, uint8_t b) {
  V* v = New(ctx);
  v->SetString(b ? rapidjson::StringRef("true", 4) : rapidjson::StringRef("false", 5));
  return v;
}
V* rc_str_concat_n(rc_ctx* ctx, const V* const* parts, int64_t n) {
  // Strings are copied as they are; other values by their text (rc_to_string), once.
  size_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const V* p = parts[i];
    if (p && !p->IsString() && !p->IsNull()) {
      const_cast<const V**>(parts)[i] = rc_to_string(ctx, p);
      p = parts[i];
    }
    total += Sv(p).size();
  }
  char* buf = static_cast<char*>(ctx->arena.Malloc(total + 1));
  size_t pos = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::string_view x = Sv(parts[i]);
    if (!x.empty()) memcpy(buf + pos, x.data(), x.size());
    pos += x.size();
  }
  buf[total] = '\0';
  V* v = New(ctx);
  v->SetString(rapidjson::StringRef(buf, static_cast<rapidjson::SizeType>(total)));
  return v;
}
V* rc_json_parse(rc_ctx* ctx, const char* text, int64_t len) {
  return rc::rt::ParseJson(ctx, std::string_view(text ? text : "", text ? static_cast<size_t>(len) : 0));
}
V* rc_json_text(rc_ctx* ctx, const V* v) { return NewString(ctx, rc::rt::ToJson(v)); }
const V* rc_effect_written(rc_ctx* ctx) { return ctx->host ? ctx->host->Written() : nullptr; }
void rc_list_push_ref(rc_ctx* ctx, V* list, const V* element) {
  if (list && list->IsArray()) PushAlias(ctx, list, element);
}

}  // extern "C"

namespace {

V* EffectList(rc_ctx* ctx, const V* api_version, const V* kind, const V* ns, const V* selector,
              const V* labels, const V* owner) {
  auto items = ctx->host->List(Text(api_version), Text(kind), Text(ns), selector, labels, owner);
  V* out = rc_new_list(ctx);
  out->Reserve(static_cast<rapidjson::SizeType>(items.size()), ctx->arena);
  for (const V* item : items) PushAlias(ctx, out, item);  // the host keeps them alive for the call
  return out;
}

bool EffectWrite(rc_ctx* ctx, int32_t op, const V& obj, const V* patch) {
  rc::Status st = ctx->host->Apply(static_cast<rc::rt::EffectHost::Write>(op), obj, patch);
  if (st.ok()) return true;
  SetTrap(ctx, RC_TRAP_EFFECT, st.message());
  return false;
}

}  // namespace

namespace rc::rt {

Status Invoke(rc_ctx* ctx, void (*thunk)(void*), void* data) {
  std::jmp_buf target;
  std::jmp_buf* saved = ctx->trap_target;
  ctx->trap_target = &target;
  ctx->trap_code = -1;
  if (setjmp(target) != 0) {
    ctx->trap_target = saved;
    return Status::Internal(ctx->trap_message);  // the call trapped
  }
  thunk(data);
  ctx->trap_target = saved;
  return Status::Ok();
}

rc_value* ParseJson(rc_ctx* ctx, std::string_view json) {
  // Parsed straight into the arena: the document's root moves into an arena value.
  rapidjson::Document doc(&ctx->arena);
  doc.Parse(json.data(), json.size());  // trailing non-space text is an error
  if (doc.HasParseError()) return nullptr;
  V* v = New(ctx);
  *v = std::move(static_cast<V&>(doc));
  return v;
}

std::string ToJson(const rc_value* value) {
  if (!value) return "null";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  value->Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string CanonicalJson(const rc_value* value) {
  if (!value) return "null";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteCanonical(*value, w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string PodTemplateHash(const rc_value* tmpl, int64_t collision_count) {
  uint32_t h = Fnv32(CanonicalJson(tmpl));
  if (collision_count >= 0) {
    char bytes[8] = {};
    uint32_t c = static_cast<uint32_t>(collision_count);
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((c >> (8 * i)) & 0xff);
    h = Fnv32(std::string_view(bytes, 8), h);
  }
  // rand.SafeEncodeString: each byte of the decimal text mapped into a vowel-free alphabet.
  static const char kAlphanums[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h);
  for (auto& c : digits) c = kAlphanums[static_cast<unsigned char>(c) % 27];
  return digits;
}

const std::vector<std::pair<const char*, void*>>& RuntimeSymbols() {
  static const std::vector<std::pair<const char*, void*>> symbols = {
#define RC_RT(name, result, params) {#name, reinterpret_cast<void*>(&name)},
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
  };
  return symbols;
}

}  // namespace rc::rt
