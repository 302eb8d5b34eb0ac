// API errors as metav1.Status (internal to the API server).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rc/apiserver/registry.h"
#include "rc/base/status.h"

namespace rc::apiserver {

struct StatusCause {
  std::string reason;  // FieldValueRequired, FieldValueInvalid, ...
  std::string message;
  std::string field;
};

struct ApiError {
  int code = 500;
  std::string reason;   // NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ...
  std::string message;
  std::string name;     // details.name
  std::string group;    // details.group
  std::string kind;     // details.kind (the resource plural, as Kubernetes does)
  std::vector<StatusCause> causes;
  int retry_after_seconds = 0;

  // The metav1.Status JSON body.
  std::string ToJson() const;

  static ApiError NotFound(const ResourceInfo& r, const std::string& name);
  static ApiError AlreadyExists(const ResourceInfo& r, const std::string& name);
  static ApiError Conflict(const ResourceInfo& r, const std::string& name, const std::string& why);
  static ApiError Invalid(const ResourceInfo& r, const std::string& name, std::vector<StatusCause> causes);
  static ApiError BadRequest(std::string message);
  static ApiError Forbidden(const ResourceInfo& r, const std::string& name, std::string message);
  static ApiError Gone(std::string message);
  static ApiError MethodNotAllowed(std::string message);
  static ApiError UnsupportedMediaType(std::string message);
  static ApiError TooManyRequests(std::string message);
  static ApiError Internal(std::string message);
  static ApiError FromStatus(const Status& s);
};

// A value or an ApiError.
template <typename T>
class ApiResult {
 public:
  ApiResult(T value) : value_(std::move(value)) {}         // NOLINT
  ApiResult(ApiError error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  T& value() { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const ApiError& error() const { return error_; }

 private:
  std::optional<T> value_;
  ApiError error_;
};

}  // namespace rc::apiserver
