// Strategic merge patch, following k8s.io/apimachinery/pkg/util/strategicpatch (server side:
// MergeParallelList = true, IgnoreUnmatchedNulls = true).
#include <algorithm>
#include <climits>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"

namespace rc::apimachinery {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

constexpr std::string_view kDirectiveMarker = "$patch";
constexpr std::string_view kRetainKeys = "$retainKeys";
constexpr std::string_view kSetElementOrderPrefix = "$setElementOrder";
constexpr std::string_view kDeleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// JSON type classes as Go's reflect.TypeOf sees decoded JSON (true/false share one type).
int TypeClass(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return 0;
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return 1;
    case rapidjson::kObjectType:
      return 2;
    case rapidjson::kArrayType:
      return 3;
    case rapidjson::kStringType:
      return 4;
    case rapidjson::kNumberType:
      return 5;
  }
  return 6;
}

std::string Abbrev(const Value& v) {
  std::string s = ToJson(v);
  if (s.size() > 300) {
    s.resize(300);
    s += "...";
  }
  return s;
}

const std::string kAbsentKey = std::string("\x01<absent>", 9);

class Merger {
 public:
  Merger(Allocator& a, const PatchSchema& schema) : a_(a), schema_(schema) {}

  // Merges patch (an object) into orig (an object), in place.
  Status MergeMap(Value& orig, const Value& patch) {
    if (!orig.IsObject()) orig.SetObject();
    if (const Value* directive = FindMember(patch, kDirectiveMarker)) {
      std::string_view d = directive->IsString() ? JsonStringView(*directive) : std::string_view();
      if (d == "delete") {
        orig.SetObject();
        return Status::Ok();
      }
      if (d == "replace") {
        orig.SetObject();  // then merge the rest of the patch into the empty map
      } else if (d != "merge") {
        return Error(
            "unknown patch type: " + (directive->IsString() ? std::string(d) : ToJson(*directive)) +
            " in map: " + Abbrev(patch));
      }
    }

    RC_RETURN_IF_ERROR(ApplyRetainKeys(orig, patch));

    std::unordered_set<std::string> handled;
    RC_RETURN_IF_ERROR(ApplySetElementOrder(orig, patch, &handled));

    std::vector<std::pair<std::string, const Value*>> delete_lists;
    for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
      std::string_view name = JsonStringView(it->name);
      if (name == kDirectiveMarker || name == kRetainKeys ||
          StartsWith(name, kSetElementOrderPrefix))
        continue;
      if (StartsWith(name, kDeleteFromPrimitiveListPrefix)) {
        std::string key;
        if (!ExtractKey(name, kDeleteFromPrimitiveListPrefix, &key)) {
          return Error("invalid patch format of primitive list");
        }
        delete_lists.emplace_back(std::move(key), &it->value);
        continue;
      }
      if (handled.count(std::string(name)) != 0) continue;
      const Value& pv = it->value;
      Value* ov = FindMember(orig, name);
      if (pv.IsNull()) {
        if (ov != nullptr) EraseMember(orig, name);
        continue;
      }
      PathScope scope(this, name);
      if (ov == nullptr || TypeClass(*ov) != TypeClass(pv)) {
        Value fresh;
        RC_RETURN_IF_ERROR(NewValue(pv, fresh));
        ov = FindMember(orig, name);  // NewValue does not touch orig, but be explicit
        if (ov == nullptr) {
          Value key(it->name, a_);
          orig.AddMember(key, fresh, a_);
        } else {
          *ov = fresh;
        }
        continue;
      }
      if (pv.IsObject()) {
        RC_RETURN_IF_ERROR(MergeMap(*ov, pv));
      } else if (pv.IsArray()) {
        RC_RETURN_IF_ERROR(MergeSliceHandler(*ov, pv, schema_.ForPath(path_), false));
      } else {
        ov->CopyFrom(pv, a_);
      }
    }

    for (auto& [key, list] : delete_lists) {
      if (list->IsNull()) continue;
      PathScope scope(this, key);
      if (!list->IsArray()) return Error("invalid patch format of primitive list");
      Value* ov = FindMember(orig, key);
      if (ov == nullptr) continue;
      if (!ov->IsArray()) return Error("expected a list to delete from, but found " + Abbrev(*ov));
      DeleteFromSlice(*ov, *list);
    }
    return Status::Ok();
  }

 private:
  struct PathScope {
    PathScope(Merger* m, std::string_view name) : m_(m) { m_->path_.emplace_back(name); }
    ~PathScope() { m_->path_.pop_back(); }
    Merger* m_;
  };

  Status Error(const std::string& reason) const {
    std::string where;
    for (const auto& p : path_) {
      if (!where.empty()) where += '.';
      where += p;
    }
    return Status::InvalidArgument(
        "strategic merge patch" + (where.empty() ? std::string() : " at " + where) + ": " + reason);
  }

  static bool ExtractKey(std::string_view name, std::string_view prefix, std::string* key) {
    // "<prefix>/<key>"
    if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0 ||
        name[prefix.size()] != '/') {
      return false;
    }
    *key = std::string(name.substr(prefix.size() + 1));
    return true;
  }

  static void EraseMember(Value& obj, std::string_view name) {
    for (rapidjson::SizeType i = 0; i < obj.MemberCount();) {
      auto it = obj.MemberBegin() + i;
      if (JsonStringView(it->name) == name) {
        obj.EraseMember(it);
      } else {
        ++i;
      }
    }
  }

  // A patch value for a field absent from (or of another type in) the original: merge it into an
  // empty value of its type, which applies/strips directives and drops nulls.
  Status NewValue(const Value& pv, Value& out) {
    if (pv.IsObject()) {
      out.SetObject();
      return MergeMap(out, pv);
    }
    if (pv.IsArray()) {
      out.SetArray();
      return MergeSliceHandler(out, pv, schema_.ForPath(path_), false);
    }
    out.CopyFrom(pv, a_);
    return Status::Ok();
  }

  Status ApplyRetainKeys(Value& orig, const Value& patch) {
    const Value* rk = FindMember(patch, kRetainKeys);
    if (rk == nullptr) return Status::Ok();
    if (!rk->IsArray()) return Error("invalid patch format of retainKeys");
    std::unordered_set<std::string_view> keep;
    for (const auto& e : rk->GetArray()) {
      if (e.IsString()) keep.insert(JsonStringView(e));
    }
    for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
      std::string_view k = JsonStringView(it->name);
      if (it->value.IsNull() || StartsWith(k, kDeleteFromPrimitiveListPrefix) ||
          StartsWith(k, kSetElementOrderPrefix) || k == kRetainKeys || k == kDirectiveMarker) {
        continue;
      }
      if (keep.count(k) == 0) {
        return Error("invalid patch format of retainKeys: field \"" + std::string(k) +
                     "\" is in the patch but not in $retainKeys");
      }
    }
    for (rapidjson::SizeType i = 0; i < orig.MemberCount();) {
      auto it = orig.MemberBegin() + i;
      if (keep.count(JsonStringView(it->name)) == 0) {
        orig.EraseMember(it);
      } else {
        ++i;
      }
    }
    return Status::Ok();
  }

  // ---- element identity --------------------------------------------------------------------

  // Identity of a list element: its merge key value (maps) or itself (primitives).
  static std::string Identity(const Value& item, std::string_view merge_key) {
    if (merge_key.empty()) return ToJson(item);
    const Value* kv = item.IsObject() ? FindMember(item, merge_key) : nullptr;
    return kv == nullptr ? kAbsentKey : ToJson(*kv);
  }

  // identity → first position
  static std::unordered_map<std::string, int> IndexOf(const std::vector<const Value*>& items,
                                                      std::string_view merge_key) {
    std::unordered_map<std::string, int> index;
    for (std::size_t i = 0; i < items.size(); ++i) {
      index.emplace(Identity(*items[i], merge_key), static_cast<int>(i));
    }
    return index;
  }

  Status NoMergeKey(const Value& item, std::string_view merge_key) const {
    return Error("map: " + Abbrev(item) +
                 " does not contain declared merge key: " + std::string(merge_key));
  }

  // ---- ordering (normalizeElementOrder / mergeSortedSlice) --------------------------------

  // Sorts items stably by their position in `order` (items not in order keep their place last).
  static void SortByOrder(std::vector<Value>& items,
                          const std::unordered_map<std::string, int>& order,
                          std::string_view merge_key) {
    std::vector<std::pair<int, std::size_t>> keys;
    keys.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto it = order.find(Identity(items[i], merge_key));
      keys.emplace_back(it == order.end() ? INT_MAX : it->second, i);
    }
    std::stable_sort(keys.begin(), keys.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<Value> sorted;
    sorted.reserve(items.size());
    for (const auto& k : keys) sorted.emplace_back(std::move(items[k.second]));
    items = std::move(sorted);
  }

  // Builds the final list: patch items sorted by patch_order, server-only items sorted by
  // server_order, then interleaved by server_order (Kubernetes' mergeSortedSlice).
  Value NormalizeElementOrder(std::vector<Value> patch_items, std::vector<Value> server_only,
                              const std::unordered_map<std::string, int>& patch_order,
                              const std::unordered_map<std::string, int>& server_order,
                              std::string_view merge_key) {
    SortByOrder(patch_items, patch_order, merge_key);
    SortByOrder(server_only, server_order, merge_key);
    auto pos = [&](const Value& v) {
      auto it = server_order.find(Identity(v, merge_key));
      return it == server_order.end() ? -1 : it->second;
    };
    Value out(rapidjson::kArrayType);
    out.Reserve(static_cast<rapidjson::SizeType>(patch_items.size() + server_only.size()), a_);
    std::size_t i = 0, j = 0;
    while (i < server_only.size() || j < patch_items.size()) {
      if (i >= server_only.size()) {
        out.PushBack(patch_items[j++], a_);
      } else if (j >= patch_items.size()) {
        out.PushBack(server_only[i++], a_);
      } else {
        int li = pos(server_only[i]);
        int ri = pos(patch_items[j]);
        if (li >= 0 && ri >= 0 && li < ri) {
          out.PushBack(server_only[i++], a_);
        } else {
          out.PushBack(patch_items[j++], a_);
        }
      }
    }
    return out;
  }

  // Splits list into items whose identity is in `present` and the rest (moves the values out).
  static void Partition(Value& list, const std::unordered_map<std::string, int>& present,
                        std::string_view merge_key, std::vector<Value>* in,
                        std::vector<Value>* out) {
    for (auto& e : list.GetArray()) {
      Value v;
      v.Swap(e);
      if (present.count(Identity(v, merge_key)) != 0) {
        in->push_back(std::move(v));
      } else {
        out->push_back(std::move(v));
      }
    }
    list.Clear();
  }

  // ---- lists -------------------------------------------------------------------------------

  enum class Kind { kEmpty, kPrimitive, kMap };

  Status ElementKind(const Value& a, const Value& b, Kind* kind) const {
    int cls = -1;
    for (const Value* list : {&a, &b}) {
      for (const auto& e : list->GetArray()) {
        int c = TypeClass(e);
        if (c == 3) return Error("lists of lists are not supported");
        if (cls == -1) {
          cls = c;
        } else if (cls != c) {
          return Error("list element types are not identical: " + Abbrev(a) + ", " + Abbrev(b));
        }
      }
    }
    *kind = cls == -1 ? Kind::kEmpty : (cls == 2 ? Kind::kMap : Kind::kPrimitive);
    return Status::Ok();
  }

  Status MergeSliceHandler(Value& orig, const Value& patch,
                           const std::optional<ListStrategy>& strategy, bool is_delete_list) {
    if (!orig.IsArray()) orig.SetArray();
    if (strategy.has_value() && strategy->merge) {
      return MergeSlice(orig, patch, strategy->merge_key, is_delete_list);
    }
    // Replace: the patch list, without directive elements, normalized.
    Value out(rapidjson::kArrayType);
    for (const auto& e : patch.GetArray()) {
      if (e.IsObject()) {
        if (FindMember(e, kDirectiveMarker) != nullptr) continue;
        Value v(rapidjson::kObjectType);
        RC_RETURN_IF_ERROR(MergeMap(v, e));
        out.PushBack(v, a_);
      } else {
        Value v(e, a_);
        out.PushBack(v, a_);
      }
    }
    orig.Swap(out);
    return Status::Ok();
  }

  static void DeleteFromSlice(Value& list, const Value& to_delete) {
    std::unordered_set<std::string> del;
    for (const auto& e : to_delete.GetArray()) del.insert(ToJson(e));
    for (auto it = list.Begin(); it != list.End();) {
      if (del.count(ToJson(*it)) != 0) {
        it = list.Erase(it);
      } else {
        ++it;
      }
    }
  }

  Status MergeSlice(Value& orig, const Value& patch, const std::string& merge_key,
                    bool is_delete_list) {
    if (orig.Empty() && patch.Empty()) return Status::Ok();
    Kind kind = Kind::kEmpty;
    RC_RETURN_IF_ERROR(ElementKind(orig, patch, &kind));

    if (kind != Kind::kMap) {
      if (is_delete_list) {
        DeleteFromSlice(orig, patch);
        return Status::Ok();
      }
      // Set union, first occurrence kept.
      std::vector<const Value*> server_items;
      for (const auto& e : orig.GetArray()) server_items.push_back(&e);
      auto server_order = IndexOf(server_items, "");
      std::vector<const Value*> patch_list;
      for (const auto& e : patch.GetArray()) patch_list.push_back(&e);
      auto patch_order = IndexOf(patch_list, "");

      std::unordered_set<std::string> seen;
      Value merged(rapidjson::kArrayType);
      for (auto& e : orig.GetArray()) {
        if (seen.insert(ToJson(e)).second) {
          Value v(e, a_);
          merged.PushBack(v, a_);
        }
      }
      for (const auto& e : patch.GetArray()) {
        if (seen.insert(ToJson(e)).second) {
          Value v(e, a_);
          merged.PushBack(v, a_);
        }
      }
      std::vector<Value> in, out;
      Partition(merged, patch_order, "", &in, &out);
      Value result =
          NormalizeElementOrder(std::move(in), std::move(out), patch_order, server_order, "");
      orig.Swap(result);
      return Status::Ok();
    }

    if (merge_key.empty()) return Error("cannot merge lists of maps without a merge key");

    // Special elements ($patch: delete / replace / merge).
    bool replace = false;
    std::vector<const Value*> plain;
    for (const auto& e : patch.GetArray()) {
      const Value* d = FindMember(e, kDirectiveMarker);
      if (d == nullptr) {
        plain.push_back(&e);
        continue;
      }
      std::string_view dv = d->IsString() ? JsonStringView(*d) : std::string_view();
      if (dv == "delete") {
        const Value* kv = FindMember(e, merge_key);
        if (kv == nullptr) return NoMergeKey(e, merge_key);
        for (auto it = orig.Begin(); it != orig.End();) {
          const Value* ok = it->IsObject() ? FindMember(*it, merge_key) : nullptr;
          if (ok != nullptr && JsonEqual(*ok, *kv)) {
            it = orig.Erase(it);
          } else {
            ++it;
          }
        }
      } else if (dv == "replace") {
        replace = true;
      } else if (dv == "merge") {
        // Merging is the default for this list; the marker element carries nothing else.
      } else {
        return Error("unknown patch type: " + (d->IsString() ? std::string(dv) : ToJson(*d)) +
                     " in map: " + Abbrev(e));
      }
    }

    if (replace) {
      Value out(rapidjson::kArrayType);
      for (const Value* p : plain) {
        Value v(rapidjson::kObjectType);
        RC_RETURN_IF_ERROR(MergeMap(v, *p));
        out.PushBack(v, a_);
      }
      orig.Swap(out);
      return Status::Ok();
    }

    // Server order is the (post-deletion) original list.
    std::vector<const Value*> server_items;
    for (const auto& e : orig.GetArray()) {
      if (FindMember(e, merge_key) == nullptr) return NoMergeKey(e, merge_key);
      server_items.push_back(&e);
    }
    auto server_order = IndexOf(server_items, merge_key);
    for (const Value* p : plain) {
      if (FindMember(*p, merge_key) == nullptr) return NoMergeKey(*p, merge_key);
    }
    auto patch_order = IndexOf(plain, merge_key);

    // Merge each patch element into the first element with the same key, or append it.
    std::unordered_map<std::string, rapidjson::SizeType> position;
    for (rapidjson::SizeType i = 0; i < orig.Size(); ++i)
      position.emplace(Identity(orig[i], merge_key), i);
    for (const Value* p : plain) {
      std::string id = Identity(*p, merge_key);
      auto it = position.find(id);
      if (it != position.end()) {
        RC_RETURN_IF_ERROR(MergeMap(orig[it->second], *p));
      } else {
        Value v(rapidjson::kObjectType);
        RC_RETURN_IF_ERROR(MergeMap(v, *p));
        orig.PushBack(v, a_);
        position.emplace(std::move(id), orig.Size() - 1);
      }
    }
    for (const auto& e : orig.GetArray()) {
      if (FindMember(e, merge_key) == nullptr) return NoMergeKey(e, merge_key);
    }

    std::vector<Value> in, out;
    Partition(orig, patch_order, merge_key, &in, &out);
    Value result =
        NormalizeElementOrder(std::move(in), std::move(out), patch_order, server_order, merge_key);
    orig.Swap(result);
    return Status::Ok();
  }

  // ---- $setElementOrder --------------------------------------------------------------------

  Status ValidateSetOrder(const Value* patch_list, const Value& order,
                          const std::string& merge_key) {
    if (patch_list == nullptr || order.Empty() || patch_list->Empty()) return Status::Ok();
    std::vector<const Value*> non_delete;
    for (const auto& e : patch_list->GetArray()) {
      if (!merge_key.empty()) {
        if (!e.IsObject()) return Error("expected a map in list " + Abbrev(*patch_list));
        const Value* d = FindMember(e, kDirectiveMarker);
        if (d != nullptr && d->IsString() && JsonStringView(*d) == "delete") continue;
      }
      non_delete.push_back(&e);
    }
    std::size_t pi = 0, si = 0;
    while (pi < non_delete.size() && si < order.Size()) {
      const Value& p = *non_delete[pi];
      if (p.IsObject() && FindMember(p, kDirectiveMarker) != nullptr) {
        ++pi;
        continue;
      }
      const Value& o = order[static_cast<rapidjson::SizeType>(si)];
      bool equal;
      if (merge_key.empty()) {
        equal = JsonEqual(p, o);
      } else {
        if (!o.IsObject())
          return Error("expected a map in $setElementOrder list, got " + Abbrev(o));
        const Value* pk = FindMember(p, merge_key);
        const Value* ok = FindMember(o, merge_key);
        if (pk == nullptr) return NoMergeKey(p, merge_key);
        if (ok == nullptr) return NoMergeKey(o, merge_key);
        equal = JsonEqual(*pk, *ok);
      }
      if (equal) ++pi;
      ++si;
    }
    if (pi < non_delete.size() && si >= order.Size()) {
      return Error("the order in patch list " + Abbrev(*patch_list) +
                   " doesn't match $setElementOrder list " + Abbrev(order));
    }
    return Status::Ok();
  }

  Status ApplySetElementOrder(Value& orig, const Value& patch,
                              std::unordered_set<std::string>* handled) {
    for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
      std::string_view name = JsonStringView(it->name);
      if (!StartsWith(name, kSetElementOrderPrefix)) continue;
      std::string key;
      if (!ExtractKey(name, kSetElementOrderPrefix, &key))
        return Error("invalid patch format of setElementOrder list");
      const Value& order = it->value;
      PathScope scope(this, key);
      if (!order.IsArray())
        return Error("invalid patch format of setElementOrder list: not a list");
      handled->insert(key);

      Value* orig_list = FindMember(orig, key);
      const Value* patch_list = FindMember(patch, key);
      if (orig_list != nullptr && !orig_list->IsArray()) {
        // Not a list in the original: the plain merge loop will replace it.
        handled->erase(key);
        continue;
      }
      if (patch_list != nullptr && !patch_list->IsArray()) {
        handled->erase(key);  // e.g. null: deletes the field in the main loop
        continue;
      }
      std::optional<ListStrategy> strategy = schema_.ForPath(path_);
      std::string merge_key =
          strategy.has_value() && strategy->merge ? strategy->merge_key : std::string();
      RC_RETURN_IF_ERROR(ValidateSetOrder(patch_list, order, merge_key));
      if (orig_list == nullptr && patch_list == nullptr) continue;

      // Identity positions in the live list, before merging.
      std::unordered_map<std::string, int> server_order;
      if (orig_list != nullptr) {
        std::vector<const Value*> items;
        for (const auto& e : orig_list->GetArray()) items.push_back(&e);
        server_order = IndexOf(items, merge_key);
      }

      Value merged(rapidjson::kArrayType);
      if (orig_list != nullptr) merged.Swap(*orig_list);
      if (patch_list != nullptr)
        RC_RETURN_IF_ERROR(MergeSliceHandler(merged, *patch_list, strategy, false));

      Value result;
      bool maps = false;
      for (const auto& e : merged.GetArray()) maps = maps || e.IsObject();
      if (merged.Empty() || (maps && merge_key.empty())) {
        result.Swap(merged);  // nothing to order / no identity for maps without merge key
      } else {
        std::vector<const Value*> order_items;
        for (const auto& e : order.GetArray()) {
          if (!merge_key.empty() && (!e.IsObject() || FindMember(e, merge_key) == nullptr))
            return NoMergeKey(e, merge_key);
          order_items.push_back(&e);
        }
        auto patch_order = IndexOf(order_items, merge_key);
        std::vector<Value> in, out;
        Partition(merged, patch_order, merge_key, &in, &out);
        result = NormalizeElementOrder(std::move(in), std::move(out), patch_order, server_order,
                                       merge_key);
      }
      Value* target = FindMember(orig, key);
      if (target != nullptr) {
        target->Swap(result);
      } else {
        Value k(key.data(), static_cast<rapidjson::SizeType>(key.size()), a_);
        orig.AddMember(k, result, a_);
      }
    }
    return Status::Ok();
  }

  Allocator& a_;
  const PatchSchema& schema_;
  std::vector<std::string> path_;
};

}  // namespace

Status ApplyStrategicMergePatch(Value& target, const Value& patch, Allocator& allocator,
                                const PatchSchema& schema) {
  if (!patch.IsObject())
    return Status::InvalidArgument("strategic merge patch must be a JSON object");
  if (!target.IsObject())
    return Status::InvalidArgument("strategic merge patch target must be a JSON object");
  Value work(target, allocator);
  Merger merger(allocator, schema);
  RC_RETURN_IF_ERROR(merger.MergeMap(work, patch));
  target.Swap(work);
  return Status::Ok();
}

}  // namespace rc::apimachinery
