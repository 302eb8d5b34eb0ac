// Defaulting and validation of built-in kinds (internal to the API server). Data-driven where it
// can be; a later milestone derives both from the DSL resource schemas.
#pragma once

#include <vector>

#include "api_error.h"
#include "json_util.h"
#include "rc/apiserver/registry.h"

namespace rc::apiserver {

// Fills the defaults Kubernetes users see (restartPolicy, dnsPolicy, strategy, ...).
void ApplyDefaults(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a);

// Prepares a new object's status as Kubernetes' create strategies do (e.g. pods start Pending).
void ResetStatusOnCreate(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a);

// Validates `obj` (with `old` on update, nullptr on create). Empty = valid.
std::vector<StatusCause> Validate(const ResourceInfo& r, const JsonValue& obj, const JsonValue* old);

}  // namespace rc::apiserver
