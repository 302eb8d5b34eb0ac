// Generic algorithms over compiled schemas: defaulting, validation (with Kubernetes' field error
// wording), unknown-field detection (fieldValidation=Strict) and OpenAPI v3 emission.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "rc/schema/schema.h"

namespace rc::schema {

using JsonAlloc = rapidjson::MemoryPoolAllocator<>;

// One field error, as metav1.StatusCause: reason FieldValueRequired / FieldValueInvalid /
// FieldValueNotSupported / FieldValueTooLong / FieldValueTooMany / FieldValueTypeInvalid.
struct Violation {
  std::string reason;
  std::string message;  // "Invalid value: 0: spec.size in body should be greater than or equal to 1"
  std::string field;    // "spec.size"
};

// Applies defaults of `type` (a struct) to `obj` recursively: absent fields get default_json or
// default_fn's value; list items and map values are defaulted by their element type.
void ApplyDefaults(const Type& type, rapidjson::Value& obj, JsonAlloc& alloc);

// Validates the object's top-level fields (everything but apiVersion/kind/metadata) against the
// schema's root type; `old` (on update) enables immutability checks.
std::vector<Violation> Validate(const ResourceSchema& schema, const rapidjson::Value& obj,
                                const rapidjson::Value* old);

// Dotted paths of fields the schema does not declare ("spec.replicaz"), for fieldValidation.
std::vector<std::string> UnknownFields(const ResourceSchema& schema, const rapidjson::Value& obj);

// OpenAPI v3 schema object (JSON text) of a type; structs become objects with properties.
std::string OpenApiV3(const Type& type);
// The object schema of a resource: apiVersion, kind, metadata (ObjectMeta ref) + root fields.
std::string OpenApiV3Resource(const ResourceSchema& schema);

}  // namespace rc::schema
