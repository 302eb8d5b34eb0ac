// The runtime library JIT-compiled rc code calls (C ABI, prefix rc_; the list with signatures is
// compiler/codegen/runtime_abi.def). Object model:
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
};

}  // namespace rc::rt

// Per-call state. One per invocation; not shared between threads.
struct rc_ctx {
  rc_ctx();
  ~rc_ctx();
  rapidjson::MemoryPoolAllocator<> arena;
  int64_t now_seconds = 0;  // 0: the real clock
  rc::rt::EffectHost* host = nullptr;
  int64_t requeue_after_ns = -1;  // set by `requeue after`
  // Trap state (owned by Invoke).
  std::jmp_buf* trap_target = nullptr;
  std::string trap_message;
  // Parsed selectors, keyed by the selector value's address or text.
  std::unordered_map<const void*, std::unique_ptr<rc::apimachinery::LabelSelector>> selector_cache;
  std::unordered_map<std::string, std::unique_ptr<rc::apimachinery::LabelSelector>> selector_text_cache;
};

namespace rc::rt {

// Runs thunk(data), which calls compiled code, catching traps: returns the trap message as
// kInternal ("division by zero", "index 3 out of range for a list of 2", the `fail`
// message). No C++ object with a destructor may live between here and compiled code.
Status Invoke(rc_ctx* ctx, void (*thunk)(void*), void* data);

// JSON text <-> value (arena-allocated), for hosts and tests.
rc_value* ParseJson(rc_ctx* ctx, const std::string& json);  // nullptr on invalid JSON
std::string ToJson(const rc_value* value);                  // "null" for nullptr

// Address of every rc_ runtime function by name (for the JIT's symbol table).
const std::vector<std::pair<const char*, void*>>& RuntimeSymbols();

}  // namespace rc::rt
