// Generic algorithms over compiled schemas: defaulting, validation (with Kubernetes' field error
// wording), unknown-field detection (fieldValidation=Strict) and OpenAPI v3 emission.
#pragma once

#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "rc/apimachinery/patch.h"
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
using Cause = Violation;

// Applies defaults of `type` (a struct) to `obj` recursively: absent fields get default_json or
// default_fn's value; list items and map values are defaulted by their element type.
void ApplyDefaults(const Type& type, rapidjson::Value& obj, JsonAlloc& alloc);
// The same (Kubernetes' name for OpenAPI defaulting).
inline void Default(const Type& type, rapidjson::Value& obj, JsonAlloc& alloc) {
  ApplyDefaults(type, obj, alloc);
}

// Validates the object's top-level fields (everything but apiVersion/kind/metadata) against the
// schema's root type; `old` (on update) enables immutability checks.
std::vector<Violation> Validate(const ResourceSchema& schema, const rapidjson::Value& obj,
                                const rapidjson::Value* old);

// Dotted paths of fields the schema does not declare ("spec.replicaz", "spec.ports[0].nmae",
// "metadata.lables": metadata is checked against metav1.ObjectMeta), for
// fieldValidation=Strict (400) and Warn (warnings). Members whose name starts with '$' (strategic
// merge patch directives) are skipped, so a patch body can be checked as well as an object; with
// `is_patch`, null members are deletions and not reported either (kubectl apply sends
// {"spec":{"oldField":null}} to drop a field it applied before).
std::vector<std::string> UnknownFields(const ResourceSchema& schema, const rapidjson::Value& obj,
                                       bool is_patch = false);

// OpenAPI v3 schema object (JSON text) of a type; structs become objects with properties.
std::string OpenApiV3(const Type& type);
inline std::string OpenApiV3Schema(const Type& type) { return OpenApiV3(type); }
// The object schema of a resource: apiVersion, kind, metadata (a $ref to kObjectMetaSchemaName,
// which the document must carry: see ObjectMetaOpenApiV3) + root fields, and
// x-kubernetes-group-version-kind.
std::string OpenApiV3Resource(const ResourceSchema& schema);

// The components/schemas name and the OpenAPI v3 schema of metav1.ObjectMeta (with its
// OwnerReference and ManagedFieldsEntry), for documents whose resources reference it.
inline constexpr const char* kObjectMetaSchemaName = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
std::string ObjectMetaOpenApiV3();

// The strategic-merge-patch strategies of a resource, read from its schema: a list with
// list_map_keys merges by the first key, a list_is_set list merges as a set, other declared lists
// are replaced. `metadata` uses the ObjectMeta strategies (finalizers: set, ownerReferences: uid).
// Where the schema does not say (no root type, kAny, undeclared fields, or an atomic list),
// `fallback` answers when given (the API server passes the k8s.io/api table for the built-in
// types). The result keeps the schema's types alive.
std::unique_ptr<apimachinery::PatchSchema> PatchSchemaFor(const ResourceSchema& schema,
                                                          const apimachinery::PatchSchema* fallback);

}  // namespace rc::schema
