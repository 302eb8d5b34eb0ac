// Server-side printing: meta.k8s.io/v1 Table (what `kubectl get` shows). Internal.
#pragma once

#include <string>
#include <vector>

#include "json_util.h"
#include "rc/apiserver/registry.h"

namespace rc::apiserver {

enum class TableObjectMode { kNone, kMetadata, kObject };  // ?includeObject=

// A Table with one row per object, rendered with `r`'s columns.
std::string RenderTable(const ResourceInfo& r, const std::vector<const JsonValue*>& objects,
                        const std::string& list_resource_version, const std::string& continue_token,
                        TableObjectMode mode, bool with_headers = true);

// The cells of one row, as JSON values (strings or integers), for tests and the renderer.
std::vector<std::string> RowCells(const ResourceInfo& r, const JsonValue& obj, int64_t now_seconds);

}  // namespace rc::apiserver
