// The runtime library JIT-compiled rc code calls (C ABI, prefix rc_; the list with signatures is
// runtime_abi.def beside this header; runtime_ir.h declares them in an llvm::Module). Object model
// (stdlib/runtime/README.md):
//   - rc_value is rapidjson::Value. Objects handed in by the host (informer cache, API server) are
//     read in place, never copied or mutated; values built by compiled code live in the call's
//     arena (rc_ctx::arena) and die with it.
//   - A null rc_value* means "absent"; every reader accepts it and yields the zero value.
//   - Scalars travel unboxed: int64, double, bool; duration = int64 ns, timestamp = int64 unix
//     seconds, quantity = int64 milli-units. They are boxed to JSON (number, "1m30s", RFC 3339,
//     "500m") when stored into objects or lists.
//   - Traps (division by zero, index out of range, `fail`) longjmp back to rc::rt::Invoke, which
//     returns the message as a Status: a failing call affects nothing else.
#pragma once

#include <rapidjson/document.h>

#include <csetjmp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rc/base/status.h"

typedef rapidjson::Value rc_value;

namespace rc::apimachinery {
class LabelSelector;
}

namespace rc::rt {

// What controllers' effects reach: the informer cache and the API server (issue 4). Tests use a
// fake. Objects returned stay valid for the duration of the call.
class EffectHost {
 public:
  virtual ~EffectHost() = default;
  virtual const rc_value* Get(const std::string& api_version, const std::string& kind,
                              const std::string& name, const std::string& ns) = 0;
  // selector: LabelSelector JSON or null; labels: exact-match map or null; owner: object or null.
  virtual std::vector<const rc_value*> List(const std::string& api_version, const std::string& kind,
                                            const std::string& ns, const rc_value* selector,
                                            const rc_value* labels, const rc_value* owner) = 0;
  enum class Write { kCreate = 1, kUpdate = 2, kUpdateStatus = 3, kDelete = 4, kPatch = 5 };
  virtual Status Apply(Write op, const rc_value& object, const rc_value* patch) = 0;
  virtual void Emit(const rc_value& object, const std::string& type, const std::string& reason,
                    const std::string& message) = 0;
  // The object as the last successful create/update/updateStatus/patch stored it (the API
  // server's reply: generated name, uid, resourceVersion), valid for the rest of the call; null
  // when unknown. What `create(obj)` and the other writes return in rc code.
  virtual const rc_value* Written() { return nullptr; }
};

}  // namespace rc::rt

// Why a call trapped (rc_ctx::trap_code; the codes rc_trap_code and rc_trap_with take).
enum rc_trap_kind : int32_t {
  RC_TRAP_FAIL = 0,            // `fail "..."` in rc code
  RC_TRAP_DIV_ZERO = 1,        // "division by zero"
  RC_TRAP_OVERFLOW = 2,        // "integer overflow"
  RC_TRAP_INDEX = 3,           // "index 3 out of range for a list of 2"
  RC_TRAP_INVALID_VALUE = 4,   // a string that is not an int/float/duration/timestamp/quantity
  RC_TRAP_BAD_SELECTOR = 5,    // a selector string that does not parse
  RC_TRAP_EFFECT = 6,          // an effect failed or is unavailable
};

// Per-call state. One per invocation (or Reset() between invocations); not shared between threads.
struct rc_ctx {
  rc_ctx();
  ~rc_ctx();
  rc_ctx(const rc_ctx&) = delete;
  rc_ctx& operator=(const rc_ctx&) = delete;
  // Frees everything the previous call built (values returned by it die) and clears trap state;
  // keeps now_seconds and host.
  void Reset();

  rapidjson::MemoryPoolAllocator<> arena;  // values built by compiled code
  int64_t now_seconds = 0;                 // rc_now(); 0: the real clock
  rc::rt::EffectHost* host = nullptr;
  int64_t requeue_after_ns = -1;  // set by `requeue after`
  // Trap state (owned by Invoke): where rc_trap* jumps, and what the last trap said.
  std::jmp_buf* trap_target = nullptr;
  int32_t trap_code = -1;  // rc_trap_kind of the last trap; -1: none
  std::string trap_message;
  // Parsed selectors: LabelSelector objects keyed by the value's address (values do not change
  // during a call); selector strings by text (shared with a process-wide cache).
  std::unordered_map<const void*, std::unique_ptr<rc::apimachinery::LabelSelector>> selector_cache;
  std::unordered_map<std::string, std::shared_ptr<const rc::apimachinery::LabelSelector>> selector_text_cache;
};

namespace rc::rt {

// Runs thunk(data), which calls compiled code, catching traps: returns the trap message as
// kInternal ("division by zero", "index 3 out of range for a list of 2", the `fail`
// message; ctx->trap_code says which kind). A trap longjmps over every frame between the trap and
// here, so the thunk must not hold C++ objects with destructors across its call into compiled
// code (the runtime functions themselves never do). Nested Invokes on one ctx are fine.
Status Invoke(rc_ctx* ctx, void (*thunk)(void*), void* data);

// Invoke for a callable: `rt::Invoke(&ctx, [&] { result = fn(&ctx, obj); })`. The callable is
// called through a plain function pointer; the same rule applies to what it holds.
template <typename F>
Status InvokeFn(rc_ctx* ctx, F& fn) {
  return Invoke(ctx, [](void* p) { (*static_cast<F*>(p))(); }, &fn);
}

// JSON text <-> value (arena-allocated), for hosts and tests.
rc_value* ParseJson(rc_ctx* ctx, std::string_view json);  // nullptr on invalid JSON
std::string ToJson(const rc_value* value);                  // "null" for nullptr
// JSON with object keys sorted (recursively) and integral doubles written as integers: equal
// values have equal text whatever their member order. What rc_hash hashes.
std::string CanonicalJson(const rc_value* value);

// Kubernetes' pod-template-hash (controller.ComputeHash): FNV-1a 32 over the template, then the
// collision count (if >= 0) as 8 little-endian bytes, printed in decimal and encoded with
// rand.SafeEncodeString. We hash the canonical JSON where Kubernetes hashes a spew dump of the Go
// struct, so the values differ from kube-controller-manager's (stable across runs and processes).
std::string PodTemplateHash(const rc_value* tmpl, int64_t collision_count = -1);

// Address of every rc_ runtime function by name (for the JIT's symbol table).
const std::vector<std::pair<const char*, void*>>& RuntimeSymbols();

}  // namespace rc::rt
