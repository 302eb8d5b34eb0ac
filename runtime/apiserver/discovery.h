// Discovery documents (/api, /apis, ...) and OpenAPI v3, generated from the registry. Internal.
#pragma once

#include <optional>
#include <string>

#include "rc/apiserver/registry.h"

namespace rc::apiserver {

struct VersionInfo {
  std::string major = "1";
  std::string minor = "31";
  std::string git_version = "v1.31.0-rc";
};

std::string VersionJson(const VersionInfo& v);
std::string CoreApiVersionsJson(const std::string& server_address);
std::string ApiGroupListJson(const ResourceRegistry& reg);
// nullopt if the group is not served.
std::optional<std::string> ApiGroupJson(const ResourceRegistry& reg, const std::string& group);
std::optional<std::string> ApiResourceListJson(const ResourceRegistry& reg, const std::string& group,
                                               const std::string& version);

// /openapi/v3: the index of group-version documents.
std::string OpenApiV3IndexJson(const ResourceRegistry& reg);
// /openapi/v3/api/v1, /openapi/v3/apis/{group}/{version}; nullopt if unknown. `gv_path` is
// "api/v1" or "apis/apps/v1".
std::optional<std::string> OpenApiV3DocumentJson(const ResourceRegistry& reg, const std::string& gv_path,
                                                 const VersionInfo& v);

}  // namespace rc::apiserver
