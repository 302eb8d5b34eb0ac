// Kubernetes protobuf request bodies -> JSON.
//
// client-go 0.32+ typed clients (kubectl 1.32/1.33 included) send request bodies of built-in types
// as `Content-Type: application/vnd.kubernetes.protobuf`: the magic "k8s\0" followed by a
// runtime.Unknown envelope {typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose
// `raw` is the object's protobuf encoding. DecodeToJson turns such a body into the JSON object that
// Kubernetes' own JSON encoding of the same Go object produces, so the server can treat it exactly
// like a JSON body.
//
// Decoded kinds: v1 Namespace, Pod, Service, Endpoints, Node, Event, ConfigMap, Secret,
// PersistentVolume, PersistentVolumeClaim, ComponentStatus; apps/v1 Deployment, ReplicaSet,
// DaemonSet, StatefulSet; batch/v1 Job; coordination.k8s.io/v1 Lease; autoscaling/v1 Scale; and
// DeleteOptions under any of those group versions or meta.k8s.io/v1. See runtime/kproto/README.md.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "rc/base/status.h"

namespace rc::kproto {

// The media type of Kubernetes protobuf bodies.
inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

// True iff `body` starts with the Kubernetes protobuf magic "k8s\0".
bool IsKubernetesProtobuf(std::string_view body);

// Decodes a Kubernetes protobuf body of a built-in type into its JSON object, with "kind" and
// "apiVersion" set from the envelope.
//  - Unknown apiVersion/kind: InvalidArgument naming them ("... v1/Foo is not supported ...").
//  - Malformed input (no magic, truncated or invalid protobuf, non-empty contentEncoding, unknown
//    field numbers, invalid UTF-8, out-of-range times, invalid IntOrString, non-JSON
//    RawExtension): InvalidArgument with a reason. Never crashes, for any input.
// Field rules (as Go's encoding/json over the k8s.io/api types): JSON names are the proto field
// names; zero scalars of non-pointer (omitempty) fields are omitted while set pointer fields are
// kept even when zero; maps become objects with sorted keys; bytes become base64; meta/v1 Time ->
// "2006-01-02T15:04:05Z" (zero Time -> null), MicroTime -> 6 fractional digits, Duration -> Go
// duration string, Quantity -> its string, IntOrString -> number or string, RawExtension/FieldsV1 ->
// the embedded JSON value.
Result<rapidjson::Document> DecodeToJson(std::string_view body);

// Go's time.Duration.String() of `nanos` ("1h2m3.5s", "1.5ms", "0s"): the JSON form of a
// meta/v1 Duration. Exposed for tests.
std::string FormatGoDuration(int64_t nanos);

}  // namespace rc::kproto
