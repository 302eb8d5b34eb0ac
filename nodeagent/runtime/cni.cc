#include "rc/nodeagent/cni.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "subprocess.h"

namespace rc::nodeagent {
namespace {

using internal::ToJson;

namespace fs = std::filesystem;
using internal::ProcessOptions;
using internal::RunProcess;

struct ConfList {
  rapidjson::Document doc;  // {"cniVersion","name","plugins":[...]}
};

Result<ConfList> LoadConfList(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto ext = e.path().extension().string();
    if (ext == ".conflist" || ext == ".conf" || ext == ".json") files.push_back(e.path());
  }
  if (files.empty()) return Status::NotFound("no CNI network config in " + dir);
  std::sort(files.begin(), files.end());
  auto text = internal::ReadFile(files[0].string());
  if (!text.ok()) return text.status();
  ConfList list;
  list.doc.Parse(text->c_str(), text->size());
  if (list.doc.HasParseError() || !list.doc.IsObject()) {
    return Status::InvalidArgument("CNI config " + files[0].string() + " is not a JSON object");
  }
  auto& a = list.doc.GetAllocator();
  if (!list.doc.HasMember("plugins")) {
    // A single-plugin .conf: wrap it.
    rapidjson::Value plugin(list.doc, a);
    rapidjson::Document wrapped(rapidjson::kObjectType);
    auto& wa = wrapped.GetAllocator();
    if (plugin.HasMember("cniVersion")) {
      wrapped.AddMember("cniVersion", rapidjson::Value(plugin["cniVersion"], wa), wa);
    }
    if (plugin.HasMember("name")) {
      wrapped.AddMember("name", rapidjson::Value(plugin["name"], wa), wa);
    }
    rapidjson::Value plugins(rapidjson::kArrayType);
    plugins.PushBack(rapidjson::Value(plugin, wa), wa);
    wrapped.AddMember("plugins", plugins, wa);
    list.doc.Swap(wrapped);
  }
  if (!list.doc["plugins"].IsArray() || list.doc["plugins"].Empty()) {
    return Status::InvalidArgument("CNI config " + files[0].string() + ": no plugins");
  }
  if (!list.doc.HasMember("name") || !list.doc["name"].IsString()) {
    return Status::InvalidArgument("CNI config " + files[0].string() + ": no name");
  }
  if (!list.doc.HasMember("cniVersion")) {
    list.doc.AddMember("cniVersion", "1.0.0", list.doc.GetAllocator());
  }
  return list;
}

// The config one plugin reads on stdin.
Result<std::string> PluginConf(const ConfList& list, const rapidjson::Value& plugin,
                               const std::string& prev_result, const std::string& capability_args,
                               std::string* type) {
  if (!plugin.IsObject() || !plugin.HasMember("type") || !plugin["type"].IsString()) {
    return Status::InvalidArgument("CNI plugin entry without a type");
  }
  *type = plugin["type"].GetString();
  if (type->find('/') != std::string::npos) {
    return Status::InvalidArgument("CNI plugin type " + *type + " is not a plain name");
  }
  rapidjson::Document conf(rapidjson::kObjectType);
  auto& a = conf.GetAllocator();
  conf.CopyFrom(plugin, a);
  conf.RemoveMember("name");
  conf.RemoveMember("cniVersion");
  conf.AddMember("name", rapidjson::Value(list.doc["name"], a), a);
  conf.AddMember("cniVersion", rapidjson::Value(list.doc["cniVersion"], a), a);
  conf.RemoveMember("runtimeConfig");
  const rapidjson::Value* caps = plugin.HasMember("capabilities") ? &plugin["capabilities"] : nullptr;
  if (!capability_args.empty() && caps && caps->IsObject()) {
    rapidjson::Document args;
    args.Parse(capability_args.c_str(), capability_args.size());
    if (args.HasParseError() || !args.IsObject()) return Status::InvalidArgument("CNI capability args are not a JSON object");
    rapidjson::Value runtime_config(rapidjson::kObjectType);
    for (const auto& cap : caps->GetObject()) {
      if (!cap.value.IsBool() || !cap.value.GetBool()) continue;
      auto it = args.FindMember(cap.name);
      if (it == args.MemberEnd()) continue;
      runtime_config.AddMember(rapidjson::Value(cap.name, a), rapidjson::Value(it->value, a), a);
    }
    if (runtime_config.MemberCount() > 0) conf.AddMember("runtimeConfig", runtime_config, a);
  }
  if (!prev_result.empty()) {
    rapidjson::Document prev;
    prev.Parse(prev_result.c_str(), prev_result.size());
    if (!prev.HasParseError() && prev.IsObject()) {
      conf.AddMember("prevResult", rapidjson::Value(prev, a), a);
    }
  }
  return ToJson(conf);
}

Status PluginError(const std::string& type, const std::string& command,
                   const internal::ProcessResult& r) {
  rapidjson::Document err;
  err.Parse(r.out.c_str(), r.out.size());
  std::string what = "CNI plugin " + type + " " + command + " failed";
  if (!err.HasParseError() && err.IsObject() && err.HasMember("msg") && err["msg"].IsString()) {
    int code = err.HasMember("code") && err["code"].IsInt() ? err["code"].GetInt() : 0;
    std::string msg = err["msg"].GetString();
    if (err.HasMember("details") && err["details"].IsString() &&
        err["details"].GetStringLength() > 0) {
      msg += ": " + std::string(err["details"].GetString());
    }
    what += " (code " + std::to_string(code) + "): " + msg;
    // Spec codes 1 (incompatible version), 4 (unknown container), 7 (invalid config) are the
    // caller's; the rest are the plugin's or the system's.
    if (code == 1 || code == 7) return Status::InvalidArgument(what);
    return Status::Internal(what);
  }
  std::string detail = !r.err.empty() ? r.err : r.out;
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  return Status::Internal(what + " (exit " + std::to_string(r.exit_code) + "): " + detail);
}

}  // namespace

Result<std::string> CniDriver::NetworkName() const {
  auto list = LoadConfList(options_.conf_dir);
  if (!list.ok()) return list.status();
  return std::string(list->doc["name"].GetString());
}

Result<std::string> CniDriver::Invoke(const std::string& command, const std::string& plugin_conf,
                                      const std::string& type, const CniInvocation& inv) const {
  std::string binary;
  std::string cni_path;
  for (const auto& dir : options_.bin_dirs) {
    if (!cni_path.empty()) cni_path += ":";
    cni_path += dir;
    if (binary.empty() && access((dir + "/" + type).c_str(), X_OK) == 0) {
      binary = dir + "/" + type;
    }
  }
  if (binary.empty()) {
    return Status::NotFound("CNI plugin " + type + " not found in " + cni_path);
  }
  std::string cni_args;
  for (const auto& [k, v] : inv.args) {
    if (!cni_args.empty()) cni_args += ";";
    cni_args += k + "=" + v;
  }
  ProcessOptions opts;
  opts.env = {"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + inv.container_id,
              "CNI_NETNS=" + inv.netns_path, "CNI_IFNAME=" + inv.ifname,
              "CNI_PATH=" + cni_path,        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  if (!cni_args.empty()) opts.env.push_back("CNI_ARGS=" + cni_args);
  opts.stdin_data = plugin_conf;
  opts.timeout_ms = options_.timeout_ms;
  opts.netns_path = options_.run_in_netns;
  auto r = RunProcess({binary}, opts);
  if (!r.ok()) return r.status();
  if (r->timed_out) {
    return Status::Unavailable("CNI plugin " + type + " " + command + " timed out");
  }
  if (r->exit_code != 0) return PluginError(type, command, *r);
  return r->out;
}

Result<CniResult> CniDriver::Add(const CniInvocation& inv) const {
  auto list = LoadConfList(options_.conf_dir);
  if (!list.ok()) return list.status();
  std::string prev;
  for (const auto& plugin : list->doc["plugins"].GetArray()) {
    std::string type;
    auto conf = PluginConf(*list, plugin, prev, inv.capability_args, &type);
    if (!conf.ok()) return conf.status();
    auto out = Invoke("ADD", *conf, type, inv);
    if (!out.ok()) return out.status();
    if (!out->empty()) prev = *out;
  }
  CniResult result;
  result.json = prev;
  rapidjson::Document doc;
  doc.Parse(prev.c_str(), prev.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Internal("CNI ADD result is not JSON: " + prev);
  }
  auto take = [&](const std::string& cidr, const rapidjson::Value* gw) {
    auto slash = cidr.find('/');
    std::string ip = cidr.substr(0, slash);
    if (ip.find(':') != std::string::npos || ip.rfind("127.", 0) == 0) return false;
    result.ip = ip;
    result.prefix_length = slash == std::string::npos ? 32 : atoi(cidr.c_str() + slash + 1);
    if (gw && gw->IsString()) result.gateway = gw->GetString();
    return true;
  };
  if (doc.HasMember("ips") && doc["ips"].IsArray()) {
    for (const auto& ip : doc["ips"].GetArray()) {
      if (!ip.IsObject() || !ip.HasMember("address") || !ip["address"].IsString()) continue;
      const rapidjson::Value* gw = ip.HasMember("gateway") ? &ip["gateway"] : nullptr;
      if (take(ip["address"].GetString(), gw)) break;
    }
  } else if (doc.HasMember("ip4") && doc["ip4"].IsObject() && doc["ip4"].HasMember("ip")) {
    const auto& ip4 = doc["ip4"];
    take(ip4["ip"].GetString(), ip4.HasMember("gateway") ? &ip4["gateway"] : nullptr);
  }
  if (result.ip.empty()) return Status::Internal("CNI ADD result has no IPv4 address: " + prev);
  return result;
}

Status CniDriver::Check(const CniInvocation& inv, const std::string& cached_result) const {
  auto list = LoadConfList(options_.conf_dir);
  if (!list.ok()) return list.status();
  for (const auto& plugin : list->doc["plugins"].GetArray()) {
    std::string type;
    auto conf = PluginConf(*list, plugin, cached_result, inv.capability_args, &type);
    if (!conf.ok()) return conf.status();
    auto out = Invoke("CHECK", *conf, type, inv);
    if (!out.ok()) return out.status();
  }
  return Status::Ok();
}

Status CniDriver::Del(const CniInvocation& inv, const std::string& cached_result) const {
  auto list = LoadConfList(options_.conf_dir);
  if (!list.ok()) return list.status();
  const auto& plugins = list->doc["plugins"].GetArray();
  Status first_error;
  for (auto i = plugins.Size(); i-- > 0;) {
    std::string type;
    auto conf = PluginConf(*list, plugins[i], cached_result, inv.capability_args, &type);
    if (!conf.ok()) return conf.status();
    auto out = Invoke("DEL", *conf, type, inv);
    // Keep going so one plugin's failure does not leak the others' resources.
    if (!out.ok() && first_error.ok()) first_error = out.status();
  }
  return first_error;
}

std::string MakeBridgeConfList(const std::string& network_name, const std::string& bridge,
                               const std::string& subnet, const std::string& ipam_data_dir) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto str = [&](const std::string& s) { return rapidjson::Value(s.c_str(), a); };
  d.AddMember("cniVersion", "1.0.0", a);
  d.AddMember("name", str(network_name), a);
  rapidjson::Value plugins(rapidjson::kArrayType);
  rapidjson::Value br(rapidjson::kObjectType);
  br.AddMember("type", "bridge", a);
  br.AddMember("bridge", str(bridge), a);
  // The bridge holds the subnet's gateway address and is every pod's default route: the node
  // reaches its pods, and traffic to other nodes' pods and to service IPs is routed by the node.
  br.AddMember("isGateway", true, a);
  br.AddMember("isDefaultGateway", true, a);
  br.AddMember("ipMasq", false, a);
  br.AddMember("hairpinMode", true, a);
  rapidjson::Value ipam(rapidjson::kObjectType);
  ipam.AddMember("type", "host-local", a);
  ipam.AddMember("dataDir", str(ipam_data_dir), a);
  rapidjson::Value ranges(rapidjson::kArrayType), set(rapidjson::kArrayType),
      range(rapidjson::kObjectType);
  range.AddMember("subnet", str(subnet), a);
  set.PushBack(range, a);
  ranges.PushBack(set, a);
  ipam.AddMember("ranges", ranges, a);
  br.AddMember("ipam", ipam, a);
  plugins.PushBack(br, a);
  // hostPort: DNAT from the node's addresses to the pod (rules in the node's network namespace).
  rapidjson::Value portmap(rapidjson::kObjectType);
  portmap.AddMember("type", "portmap", a);
  rapidjson::Value caps(rapidjson::kObjectType);
  caps.AddMember("portMappings", true, a);
  portmap.AddMember("capabilities", caps, a);
  portmap.AddMember("snat", true, a);
  plugins.PushBack(portmap, a);
  rapidjson::Value lo(rapidjson::kObjectType);
  lo.AddMember("type", "loopback", a);
  plugins.PushBack(lo, a);
  d.AddMember("plugins", plugins, a);
  return ToJson(d);
}

}  // namespace rc::nodeagent
