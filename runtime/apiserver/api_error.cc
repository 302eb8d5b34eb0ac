#include "api_error.h"

#include "json_util.h"

namespace rc::apiserver {

std::string ApiError::ToJson() const {
  std::string out = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)";
  out += Quote(message);
  out += R"(,"reason":)" + Quote(reason);
  if (!name.empty() || !kind.empty() || !causes.empty() || retry_after_seconds > 0) {
    out += R"(,"details":{)";
    bool first = true;
    auto field = [&](const char* k, const std::string& v) {
      if (v.empty()) return;
      out += (first ? "" : ",") + std::string("\"") + k + "\":" + Quote(v);
      first = false;
    };
    field("name", name);
    field("group", group);
    field("kind", kind);
    if (!causes.empty()) {
      out += (first ? "" : ",") + std::string(R"("causes":[)");
      first = false;
      for (size_t i = 0; i < causes.size(); ++i) {
        if (i) out += ",";
        out += R"({"reason":)" + Quote(causes[i].reason) + R"(,"message":)" + Quote(causes[i].message) +
               R"(,"field":)" + Quote(causes[i].field) + "}";
      }
      out += "]";
    }
    if (retry_after_seconds > 0) {
      out += (first ? "" : ",") + std::string(R"("retryAfterSeconds":)") + std::to_string(retry_after_seconds);
    }
    out += "}";
  }
  out += R"(,"code":)" + std::to_string(code) + "}";
  return out;
}

ApiError ApiError::NotFound(const ResourceInfo& r, const std::string& name) {
  return {404, "NotFound", r.QualifiedResource() + " \"" + name + "\" not found", name, r.group, r.plural};
}

ApiError ApiError::AlreadyExists(const ResourceInfo& r, const std::string& name) {
  return {409, "AlreadyExists", r.QualifiedResource() + " \"" + name + "\" already exists", name, r.group, r.plural};
}

ApiError ApiError::Conflict(const ResourceInfo& r, const std::string& name, const std::string& why) {
  return {409, "Conflict",
          "Operation cannot be fulfilled on " + r.QualifiedResource() + " \"" + name + "\": " + why,
          name, r.group, r.plural};
}

ApiError ApiError::Invalid(const ResourceInfo& r, const std::string& name, std::vector<StatusCause> causes) {
  std::string message = r.QualifiedKind() + " \"" + name + "\" is invalid: ";
  if (causes.size() == 1) {
    message += causes[0].field + ": " + causes[0].message;
  } else {
    message += "[";
    for (size_t i = 0; i < causes.size(); ++i) {
      if (i) message += ", ";
      message += causes[i].field + ": " + causes[i].message;
    }
    message += "]";
  }
  ApiError e{422, "Invalid", message, name, r.group, r.kind};
  e.causes = std::move(causes);
  return e;
}

ApiError ApiError::BadRequest(std::string message) { return {400, "BadRequest", std::move(message)}; }

ApiError ApiError::Forbidden(const ResourceInfo& r, const std::string& name, std::string message) {
  return {403, "Forbidden", r.QualifiedResource() + " \"" + name + "\" is forbidden: " + message, name,
          r.group, r.plural};
}

ApiError ApiError::Gone(std::string message) { return {410, "Expired", std::move(message)}; }

ApiError ApiError::MethodNotAllowed(std::string message) {
  return {405, "MethodNotAllowed", std::move(message)};
}

ApiError ApiError::UnsupportedMediaType(std::string message) {
  return {415, "UnsupportedMediaType", std::move(message)};
}

ApiError ApiError::TooManyRequests(std::string message) {
  ApiError e{429, "TooManyRequests", std::move(message)};
  e.retry_after_seconds = 1;
  return e;
}

ApiError ApiError::Internal(std::string message) {
  return {500, "InternalError", "Internal error occurred: " + message};
}

ApiError ApiError::FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kCompacted:
      return Gone("The resourceVersion for the provided list is too old. (" + s.message() + ")");
    case StatusCode::kResourceExhausted:
      return TooManyRequests(s.message());
    case StatusCode::kUnavailable:
      return {503, "ServiceUnavailable", s.message()};
    case StatusCode::kInvalidArgument:
      return BadRequest(s.message());
    default:
      return Internal(s.ToString());
  }
}

}  // namespace rc::apiserver
