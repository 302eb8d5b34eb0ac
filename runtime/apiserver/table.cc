#include "table.h"

#include <algorithm>
#include <cctype>

namespace rc::apiserver {

namespace {

std::string None(std::string s) { return s.empty() ? "<none>" : s; }

std::string Join(const std::vector<std::string>& parts, const char* sep = ",") {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

int64_t Int(const JsonValue& obj, std::string_view path) { return IntAt(obj, path).value_or(0); }

std::string Age(const JsonValue& obj, std::string_view path, int64_t now) {
  auto ts = ParseTimestamp(StrAt(obj, path));
  if (!ts) return "<unknown>";
  return HumanDuration(now - *ts);
}

std::string LabelMap(const JsonValue* labels) {
  if (!labels || !labels->IsObject()) return "";
  std::vector<std::string> parts;
  for (auto& m : labels->GetObject()) {
    parts.push_back(std::string(m.name.GetString()) + "=" + (m.value.IsString() ? m.value.GetString() : ""));
  }
  return Join(parts);
}

std::string SelectorString(const JsonValue* sel) {
  if (!sel || !sel->IsObject()) return "";
  std::vector<std::string> parts;
  if (const JsonValue* ml = Member(*sel, "matchLabels"); ml && ml->IsObject()) {
    std::string s = LabelMap(ml);
    if (!s.empty()) parts.push_back(s);
  }
  if (const JsonValue* me = Member(*sel, "matchExpressions"); me && me->IsArray()) {
    for (auto& e : me->GetArray()) {
      std::string key = StrAt(e, "key"), op = StrAt(e, "operator");
      std::vector<std::string> values;
      if (const JsonValue* v = Member(e, "values"); v && v->IsArray()) {
        for (auto& x : v->GetArray()) {
          if (x.IsString()) values.push_back(x.GetString());
        }
      }
      if (op == "In") parts.push_back(key + " in (" + Join(values) + ")");
      else if (op == "NotIn") parts.push_back(key + " notin (" + Join(values) + ")");
      else if (op == "Exists") parts.push_back(key);
      else if (op == "DoesNotExist") parts.push_back("!" + key);
    }
  }
  return Join(parts);
}

std::vector<std::string> TemplateContainerField(const JsonValue& obj, const char* field) {
  std::vector<std::string> out;
  const JsonValue* cs = Path(obj, "spec.template.spec.containers");
  if (cs && cs->IsArray()) {
    for (auto& c : cs->GetArray()) out.push_back(StrAt(c, field));
  }
  return out;
}

std::string PodStatus(const JsonValue& pod) {
  std::string reason = StrAt(pod, "status.reason");
  if (reason.empty()) reason = StrAt(pod, "status.phase");
  // Init containers.
  const JsonValue* init_statuses = Path(pod, "status.initContainerStatuses");
  const JsonValue* init_specs = Path(pod, "spec.initContainers");
  bool initializing = false;
  if (init_statuses && init_statuses->IsArray()) {
    int total = init_specs && init_specs->IsArray() ? static_cast<int>(init_specs->Size()) : 0;
    int i = 0;
    for (auto& s : init_statuses->GetArray()) {
      std::string term_reason = StrAt(s, "state.terminated.reason");
      auto exit_code = IntAt(s, "state.terminated.exitCode");
      if (exit_code && *exit_code == 0) {
        ++i;
        continue;
      }
      if (exit_code) {
        reason = term_reason.empty() ? "Init:ExitCode:" + std::to_string(*exit_code) : "Init:" + term_reason;
      } else if (std::string w = StrAt(s, "state.waiting.reason"); !w.empty() && w != "PodInitializing") {
        reason = "Init:" + w;
      } else {
        reason = "Init:" + std::to_string(i) + "/" + std::to_string(total);
      }
      initializing = true;
      break;
    }
  }
  if (!initializing) {
    bool has_running = false;
    const JsonValue* statuses = Path(pod, "status.containerStatuses");
    if (statuses && statuses->IsArray()) {
      for (rapidjson::SizeType k = statuses->Size(); k-- > 0;) {
        const JsonValue& s = (*statuses)[k];
        std::string w = StrAt(s, "state.waiting.reason");
        std::string t = StrAt(s, "state.terminated.reason");
        if (!w.empty()) {
          reason = w;
        } else if (!t.empty()) {
          reason = t;
        } else if (auto code = IntAt(s, "state.terminated.exitCode")) {
          auto sig = IntAt(s, "state.terminated.signal");
          reason = sig && *sig ? "Signal:" + std::to_string(*sig) : "ExitCode:" + std::to_string(*code);
        } else if (Path(s, "state.running") && Member(s, "ready") && Member(s, "ready")->IsTrue()) {
          has_running = true;
        }
      }
    }
    if (reason == "Completed" && has_running) reason = "Running";
  }
  if (Path(pod, "metadata.deletionTimestamp")) {
    reason = StrAt(pod, "status.reason") == "NodeLost" ? "Unknown" : "Terminating";
  }
  return reason;
}

std::string PodReady(const JsonValue& pod) {
  int total = 0, ready = 0;
  if (const JsonValue* cs = Path(pod, "spec.containers"); cs && cs->IsArray()) total = cs->Size();
  if (const JsonValue* st = Path(pod, "status.containerStatuses"); st && st->IsArray()) {
    for (auto& s : st->GetArray()) {
      if (const JsonValue* r = Member(s, "ready"); r && r->IsTrue()) ++ready;
    }
  }
  return std::to_string(ready) + "/" + std::to_string(total);
}

std::string ServicePorts(const JsonValue& svc) {
  std::vector<std::string> parts;
  if (const JsonValue* ports = Path(svc, "spec.ports"); ports && ports->IsArray()) {
    for (auto& p : ports->GetArray()) {
      std::string s = std::to_string(Int(p, "port"));
      if (auto np = IntAt(p, "nodePort"); np && *np) s += ":" + std::to_string(*np);
      s += "/" + StrAt(p, "protocol", "TCP");
      parts.push_back(s);
    }
  }
  return None(Join(parts));
}

std::string EndpointsList(const JsonValue& ep) {
  std::vector<std::string> out;
  size_t total = 0;
  if (const JsonValue* subsets = Member(ep, "subsets"); subsets && subsets->IsArray()) {
    for (auto& ss : subsets->GetArray()) {
      const JsonValue* addrs = Member(ss, "addresses");
      const JsonValue* ports = Member(ss, "ports");
      if (!addrs || !addrs->IsArray()) continue;
      for (auto& a : addrs->GetArray()) {
        if (ports && ports->IsArray() && !ports->Empty()) {
          for (auto& p : ports->GetArray()) {
            ++total;
            if (out.size() < 3) out.push_back(StrAt(a, "ip") + ":" + std::to_string(Int(p, "port")));
          }
        } else {
          ++total;
          if (out.size() < 3) out.push_back(StrAt(a, "ip"));
        }
      }
    }
  }
  std::string s = Join(out);
  if (total > out.size()) s += " + " + std::to_string(total - out.size()) + " more...";
  return None(s);
}

std::string NodeStatus(const JsonValue& node) {
  std::string status = "Unknown";
  if (const JsonValue* conds = Path(node, "status.conditions"); conds && conds->IsArray()) {
    for (auto& c : conds->GetArray()) {
      if (StrAt(c, "type") == "Ready") status = StrAt(c, "status") == "True" ? "Ready" : "NotReady";
    }
  }
  if (const JsonValue* u = Path(node, "spec.unschedulable"); u && u->IsTrue()) status += ",SchedulingDisabled";
  return status;
}

std::string NodeRoles(const JsonValue& node) {
  std::vector<std::string> roles;
  if (const JsonValue* labels = Path(node, "metadata.labels"); labels && labels->IsObject()) {
    for (auto& m : labels->GetObject()) {
      std::string_view k(m.name.GetString(), m.name.GetStringLength());
      constexpr std::string_view kPrefix = "node-role.kubernetes.io/";
      if (k.substr(0, kPrefix.size()) == kPrefix) roles.emplace_back(k.substr(kPrefix.size()));
    }
  }
  return None(Join(roles));
}

std::string NodeAddress(const JsonValue& node, const char* type) {
  if (const JsonValue* a = Path(node, "status.addresses"); a && a->IsArray()) {
    for (auto& x : a->GetArray()) {
      if (StrAt(x, "type") == type) return StrAt(x, "address");
    }
  }
  return "<none>";
}

std::string AccessModes(const JsonValue* modes) {
  std::vector<std::string> out;
  if (modes && modes->IsArray()) {
    for (auto& m : modes->GetArray()) {
      std::string s = m.IsString() ? m.GetString() : "";
      if (s == "ReadWriteOnce") out.push_back("RWO");
      else if (s == "ReadOnlyMany") out.push_back("ROX");
      else if (s == "ReadWriteMany") out.push_back("RWX");
      else if (s == "ReadWriteOncePod") out.push_back("RWOP");
    }
  }
  return Join(out);
}

std::string JobStatus(const JsonValue& job) {
  if (const JsonValue* conds = Path(job, "status.conditions"); conds && conds->IsArray()) {
    for (auto& c : conds->GetArray()) {
      if (StrAt(c, "status") != "True") continue;
      std::string t = StrAt(c, "type");
      if (t == "Complete") return "Complete";
      if (t == "Failed") return "Failed";
      if (t == "Suspended") return "Suspended";
    }
  }
  return "Running";
}

std::string ConditionField(const JsonValue& obj, const char* type, const char* field) {
  if (const JsonValue* conds = Member(obj, "conditions"); conds && conds->IsArray()) {
    for (auto& c : conds->GetArray()) {
      if (StrAt(c, "type") == type) return StrAt(c, field);
    }
  }
  return "";
}

// A cell as a JSON literal.
std::string Cell(const ResourceInfo& r, const ColumnInfo& col, const JsonValue& obj, int64_t now) {
  const std::string& src = col.source;
  if (col.compute_value || col.compute) {
    // A compiled DSL column; "date" columns render as ages like kubectl's.
    std::string text = col.compute_value ? col.compute_value(&obj, now) : col.compute(ToJson(obj), now);
    if (col.type == "date") {
      auto ts = ParseTimestamp(text);
      text = ts ? HumanDuration(now - *ts) : "<unknown>";
    }
    if (col.type == "integer") return text.empty() ? "0" : text;
    return Quote(text);
  }
  if (src.rfind("$agepath:", 0) == 0) return Quote(Age(obj, src.substr(9), now));
  if (src.empty() || src[0] != '$') {
    const JsonValue* v = Path(obj, src);
    if (col.type == "integer") {
      return std::to_string(v && v->IsInt64() ? v->GetInt64() : 0);
    }
    if (!v || v->IsNull()) return "\"\"";
    if (v->IsString()) return Quote(v->GetString());
    return Quote(ToJson(*v));
  }
  std::string s;
  if (src.rfind("$none:", 0) == 0) s = None(StrAt(obj, src.substr(6)));
  else if (src == "$age") s = Age(obj, "metadata.creationTimestamp", now);
  else if (src == "$pod.ready") s = PodReady(obj);
  else if (src == "$pod.status") s = PodStatus(obj);
  else if (src == "$pod.restarts") {
    int64_t n = 0;
    if (const JsonValue* st = Path(obj, "status.containerStatuses"); st && st->IsArray()) {
      for (auto& c : st->GetArray()) n += Int(c, "restartCount");
    }
    return Quote(std::to_string(n));
  } else if (src == "$pod.node") s = None(StrAt(obj, "spec.nodeName"));
  else if (src == "$pod.nominated") s = None(StrAt(obj, "status.nominatedNodeName"));
  else if (src == "$pod.gates") s = "<none>";
  else if (src == "$svc.clusterip") s = None(StrAt(obj, "spec.clusterIP"));
  else if (src == "$svc.externalip") {
    std::vector<std::string> ips;
    if (const JsonValue* e = Path(obj, "spec.externalIPs"); e && e->IsArray()) {
      for (auto& x : e->GetArray()) if (x.IsString()) ips.push_back(x.GetString());
    }
    if (const JsonValue* ing = Path(obj, "status.loadBalancer.ingress"); ing && ing->IsArray()) {
      for (auto& x : ing->GetArray()) ips.push_back(StrAt(x, "ip", StrAt(x, "hostname")));
    }
    s = ips.empty() ? (StrAt(obj, "spec.type") == "LoadBalancer" ? "<pending>" : "<none>") : Join(ips);
  } else if (src == "$svc.ports") s = ServicePorts(obj);
  else if (src == "$svc.selector") s = None(LabelMap(Path(obj, "spec.selector")));
  else if (src == "$endpoints") s = EndpointsList(obj);
  else if (src == "$node.status") s = NodeStatus(obj);
  else if (src == "$node.roles") s = NodeRoles(obj);
  else if (src == "$node.internalip") s = NodeAddress(obj, "InternalIP");
  else if (src == "$node.externalip") s = NodeAddress(obj, "ExternalIP");
  else if (src == "$event.lastseen") {
    std::string ts = StrAt(obj, "lastTimestamp");
    if (ts.empty()) ts = StrAt(obj, "eventTime");
    if (ts.empty()) ts = StrAt(obj, "metadata.creationTimestamp");
    auto t = ParseTimestamp(ts);
    s = t ? HumanDuration(now - *t) : "<unknown>";
  } else if (src == "$event.object") {
    std::string kind = StrAt(obj, "involvedObject.kind");
    std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::tolower(c); });
    s = kind + "/" + StrAt(obj, "involvedObject.name");
  } else if (src == "$event.source") {
    s = StrAt(obj, "source.component");
    if (std::string host = StrAt(obj, "source.host"); !host.empty()) s += ", " + host;
  } else if (src.rfind("$count.", 0) == 0) {
    int64_t n = 0;
    std::string fields = src.substr(7);
    size_t start = 0;
    while (start <= fields.size()) {
      size_t plus = fields.find('+', start);
      std::string f = fields.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
      if (const JsonValue* m = Member(obj, f); m && m->IsObject()) n += m->MemberCount();
      if (plus == std::string::npos) break;
      start = plus + 1;
    }
    return std::to_string(n);
  } else if (src == "$pv.accessmodes") s = AccessModes(Path(obj, "spec.accessModes"));
  else if (src == "$pvc.accessmodes") s = AccessModes(Path(obj, "status.accessModes"));
  else if (src == "$pv.claim") {
    std::string name = StrAt(obj, "spec.claimRef.name");
    s = name.empty() ? "" : StrAt(obj, "spec.claimRef.namespace") + "/" + name;
  } else if (src.rfind("$cs.", 0) == 0) {
    const JsonValue& o = obj;
    if (src == "$cs.status") {
      std::string st = ConditionField(o, "Healthy", "status");
      s = st == "True" ? "Healthy" : st.empty() ? "Unknown" : "Unhealthy";
    } else if (src == "$cs.message") {
      s = ConditionField(o, "Healthy", "message");
    } else {
      s = ConditionField(o, "Healthy", "error");
    }
  } else if (src.rfind("$ratio.", 0) == 0) {
    std::string spec = src.substr(7);
    size_t slash = spec.find('/');
    s = std::to_string(Int(obj, spec.substr(0, slash))) + "/" + std::to_string(Int(obj, spec.substr(slash + 1)));
  } else if (src == "$template.containers") s = Join(TemplateContainerField(obj, "name"));
  else if (src == "$template.images") s = Join(TemplateContainerField(obj, "image"));
  else if (src == "$selector") s = None(SelectorString(Path(obj, "spec.selector")));
  else if (src == "$ds.nodeselector") s = None(LabelMap(Path(obj, "spec.template.spec.nodeSelector")));
  else if (src == "$job.status") s = JobStatus(obj);
  else if (src == "$job.completions") {
    s = std::to_string(Int(obj, "status.succeeded")) + "/" + std::to_string(IntAt(obj, "spec.completions").value_or(1));
  } else if (src == "$job.duration") {
    auto start = ParseTimestamp(StrAt(obj, "status.startTime"));
    auto end = ParseTimestamp(StrAt(obj, "status.completionTime"));
    s = start ? HumanDuration((end ? *end : now) - *start) : "";
  }
  (void)r;
  return Quote(s);
}

void AppendColumns(std::string& out, const ResourceInfo& r) {
  out += R"("columnDefinitions":[)";
  for (size_t i = 0; i < r.columns.size(); ++i) {
    const auto& c = r.columns[i];
    if (i) out += ",";
    out += R"({"name":)" + Quote(c.name) + R"(,"type":)" + Quote(c.type) + R"(,"format":)" +
           Quote(c.format) + R"(,"description":)" + Quote(c.description) + R"(,"priority":)" +
           std::to_string(c.priority) + "}";
  }
  out += "]";
}

}  // namespace

std::vector<std::string> RowCells(const ResourceInfo& r, const JsonValue& obj, int64_t now_seconds) {
  std::vector<std::string> cells;
  for (const auto& c : r.columns) cells.push_back(Cell(r, c, obj, now_seconds));
  return cells;
}

std::string RenderTable(const ResourceInfo& r, const std::vector<const JsonValue*>& objects,
                        const std::string& list_resource_version, const std::string& continue_token,
                        TableObjectMode mode, bool with_headers) {
  int64_t now = NowSeconds();
  std::string out = R"({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":)" +
                    Quote(list_resource_version);
  if (!continue_token.empty()) out += R"(,"continue":)" + Quote(continue_token);
  out += "},";
  if (with_headers) {
    AppendColumns(out, r);
  } else {
    out += R"("columnDefinitions":null)";
  }
  out += R"(,"rows":[)";
  for (size_t i = 0; i < objects.size(); ++i) {
    const JsonValue& obj = *objects[i];
    if (i) out += ",";
    out += R"({"cells":[)";
    auto cells = RowCells(r, obj, now);
    for (size_t k = 0; k < cells.size(); ++k) {
      if (k) out += ",";
      out += cells[k];
    }
    out += "]";
    if (mode == TableObjectMode::kObject) {
      out += R"(,"object":)" + ToJson(obj);
    } else if (mode == TableObjectMode::kMetadata) {
      out += R"(,"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":)";
      const JsonValue* meta = Member(obj, "metadata");
      out += meta ? ToJson(*meta) : "{}";
      out += "}";
    }
    out += "}";
  }
  out += "]}";
  return out;
}

}  // namespace rc::apiserver
