// RFC 7386 merge patch and RFC 6902 JSON patch.
#include "rc/apimachinery/patch.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rc/apimachinery/json.h"

namespace rc::apimachinery {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

void EraseMemberOrdered(Value& obj, std::string_view name) {
  for (rapidjson::SizeType i = 0; i < obj.MemberCount();) {
    auto it = obj.MemberBegin() + i;
    if (JsonStringView(it->name) == name) {
      obj.EraseMember(it);
    } else {
      ++i;
    }
  }
}

void MergePatchInto(Value& target, const Value& patch, Allocator& a) {
  if (!patch.IsObject()) {
    target.CopyFrom(patch, a);
    return;
  }
  if (!target.IsObject()) target.SetObject();
  for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
    std::string_view name = JsonStringView(it->name);
    if (it->value.IsNull()) {
      EraseMemberOrdered(target, name);
      continue;
    }
    Value* existing = FindMember(target, name);
    if (existing == nullptr) {
      Value key(it->name, a);
      Value fresh;  // null: an object patch turns it into {} and drops nested nulls
      MergePatchInto(fresh, it->value, a);
      target.AddMember(key, fresh, a);
    } else {
      MergePatchInto(*existing, it->value, a);
    }
  }
}

std::size_t CountNodes(const Value& v) {
  std::size_t n = 0;
  std::vector<const Value*> stack{&v};
  while (!stack.empty()) {
    const Value* cur = stack.back();
    stack.pop_back();
    ++n;
    if (cur->IsObject()) {
      for (auto it = cur->MemberBegin(); it != cur->MemberEnd(); ++it) stack.push_back(&it->value);
    } else if (cur->IsArray()) {
      for (const auto& e : cur->GetArray()) stack.push_back(&e);
    }
  }
  return n;
}

const char* TypeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "boolean";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return "number";
  }
  return "unknown";
}

// Canonical array index (RFC 6901): "0" or [1-9][0-9]*.
bool ParseArrayIndex(const std::string& token, std::size_t* out) {
  if (token.empty() || token.size() > 18) return false;
  if (token.size() > 1 && token[0] == '0') return false;
  std::size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  *out = n;
  return true;
}

class JsonPatcher {
 public:
  JsonPatcher(rapidjson::Document& doc, const JsonPatchOptions& options)
      : doc_(doc), options_(options) {}

  Status Apply(const Value& patch) {
    if (!patch.IsArray()) {
      return Status::InvalidArgument(
          std::string("json patch must be a JSON array of operations, got ") + TypeName(patch));
    }
    if (patch.Size() > options_.max_operations) {
      return Status::ResourceExhausted("The allowed maximum operations in a JSON patch is " +
                                       std::to_string(options_.max_operations) + ", got " +
                                       std::to_string(patch.Size()));
    }
    for (rapidjson::SizeType i = 0; i < patch.Size(); ++i) {
      index_ = i;
      RC_RETURN_IF_ERROR(ApplyOne(patch[i]));
    }
    return Status::Ok();
  }

 private:
  Status Error(const std::string& reason) const {
    std::string where = "json patch operation " + std::to_string(index_);
    if (!op_.empty()) where += " (\"" + op_ + "\" at \"" + path_ + "\")";
    return Status::InvalidArgument(where + ": " + reason);
  }

  Status ApplyOne(const Value& op) {
    op_.clear();
    path_.clear();
    if (!op.IsObject())
      return Error(std::string("operation must be an object, got ") + TypeName(op));
    const Value* opv = FindMember(op, "op");
    if (opv == nullptr || !opv->IsString()) return Error("missing or non-string \"op\"");
    const Value* pathv = FindMember(op, "path");
    op_ = std::string(JsonStringView(*opv));
    if (pathv == nullptr || !pathv->IsString()) {
      path_ = "";
      return Error("missing or non-string \"path\"");
    }
    path_ = std::string(JsonStringView(*pathv));
    auto tokens = ParseJsonPointer(path_);
    if (!tokens.ok()) return Error(tokens.status().message());
    const Value* value = FindMember(op, "value");
    auto need_value = [&]() -> Status {
      if (value == nullptr) return Error("missing \"value\"");
      return Status::Ok();
    };
    auto from = [&]() -> Result<std::vector<std::string>> {
      const Value* fromv = FindMember(op, "from");
      if (fromv == nullptr || !fromv->IsString()) return Error("missing or non-string \"from\"");
      auto t = ParseJsonPointer(JsonStringView(*fromv));
      if (!t.ok()) return Error("from: " + t.status().message());
      return t;
    };
    Allocator& a = doc_.GetAllocator();
    if (op_ == "add") {
      RC_RETURN_IF_ERROR(need_value());
      Value copy(*value, a);
      return Add(*tokens, copy);
    }
    if (op_ == "remove") {
      Value removed;
      return Remove(*tokens, &removed);
    }
    if (op_ == "replace") {
      RC_RETURN_IF_ERROR(need_value());
      Value* target = Resolve(*tokens, tokens->size());
      if (target == nullptr) return Error("path does not exist");
      target->CopyFrom(*value, a);
      return Status::Ok();
    }
    if (op_ == "test") {
      RC_RETURN_IF_ERROR(need_value());
      Value* target = Resolve(*tokens, tokens->size());
      if (target == nullptr) return Error("test failed: path does not exist");
      if (!JsonEqual(*target, *value))
        return Error("test failed: value is " + Truncate(ToJson(*target)));
      return Status::Ok();
    }
    if (op_ == "move") {
      auto f = from();
      if (!f.ok()) return f.status();
      if (Resolve(*f, f->size()) == nullptr) return Error("\"from\" path does not exist");
      if (*f == *tokens) return Status::Ok();
      if (f->size() < tokens->size() && std::equal(f->begin(), f->end(), tokens->begin())) {
        return Error("cannot move a value into one of its children");
      }
      Value moved;
      RC_RETURN_IF_ERROR(Remove(*f, &moved));
      return Add(*tokens, moved);
    }
    if (op_ == "copy") {
      auto f = from();
      if (!f.ok()) return f.status();
      Value* src = Resolve(*f, f->size());
      if (src == nullptr) return Error("\"from\" path does not exist");
      copied_nodes_ += CountNodes(*src);
      if (copied_nodes_ > options_.max_copied_nodes) {
        return Status::ResourceExhausted("json patch operation " + std::to_string(index_) +
                                         ": copy operations exceed the limit of " +
                                         std::to_string(options_.max_copied_nodes) +
                                         " copied values");
      }
      Value copy(*src, a);
      return Add(*tokens, copy);
    }
    return Error("unknown operation \"" + op_ +
                 "\" (expected add, remove, replace, move, copy or test)");
  }

  static std::string Truncate(std::string s) {
    if (s.size() > 200) {
      s.resize(200);
      s += "...";
    }
    return s;
  }

  // Follows the first n tokens; nullptr when something is missing.
  Value* Resolve(const std::vector<std::string>& tokens, std::size_t n) {
    Value* cur = &doc_;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& t = tokens[i];
      if (cur->IsObject()) {
        cur = FindMember(*cur, t);
        if (cur == nullptr) return nullptr;
      } else if (cur->IsArray()) {
        std::size_t idx;
        if (!ParseArrayIndex(t, &idx) || idx >= cur->Size()) return nullptr;
        cur = &(*cur)[static_cast<rapidjson::SizeType>(idx)];
      } else {
        return nullptr;
      }
    }
    return cur;
  }

  Status Add(const std::vector<std::string>& tokens, Value& value) {
    Allocator& a = doc_.GetAllocator();
    if (tokens.empty()) {
      static_cast<Value&>(doc_) = value;  // moves
      return Status::Ok();
    }
    Value* parent = Resolve(tokens, tokens.size() - 1);
    if (parent == nullptr) return Error("parent of the path does not exist");
    const std::string& last = tokens.back();
    if (parent->IsObject()) {
      if (Value* existing = FindMember(*parent, last)) {
        *existing = value;
      } else {
        Value key(last.data(), static_cast<rapidjson::SizeType>(last.size()), a);
        parent->AddMember(key, value, a);
      }
      return Status::Ok();
    }
    if (parent->IsArray()) {
      if (last == "-") {
        parent->PushBack(value, a);
        return Status::Ok();
      }
      std::size_t idx;
      if (!ParseArrayIndex(last, &idx)) return Error("invalid array index \"" + last + "\"");
      if (idx > parent->Size()) {
        return Error("array index " + last + " is out of bounds (size " +
                     std::to_string(parent->Size()) + ")");
      }
      parent->PushBack(Value(), a);
      for (rapidjson::SizeType j = parent->Size() - 1; j > idx; --j)
        (*parent)[j].Swap((*parent)[j - 1]);
      (*parent)[static_cast<rapidjson::SizeType>(idx)] = value;
      return Status::Ok();
    }
    return Error(std::string("cannot add a member to a ") + TypeName(*parent));
  }

  Status Remove(const std::vector<std::string>& tokens, Value* removed) {
    if (tokens.empty()) return Error("cannot remove the whole document");
    Value* parent = Resolve(tokens, tokens.size() - 1);
    if (parent == nullptr) return Error("path does not exist");
    const std::string& last = tokens.back();
    if (parent->IsObject()) {
      for (rapidjson::SizeType i = 0; i < parent->MemberCount(); ++i) {
        auto it = parent->MemberBegin() + i;
        if (JsonStringView(it->name) == last) {
          removed->Swap(it->value);
          parent->EraseMember(it);
          return Status::Ok();
        }
      }
      return Error("path does not exist");
    }
    if (parent->IsArray()) {
      std::size_t idx;
      if (!ParseArrayIndex(last, &idx) || idx >= parent->Size())
        return Error("path does not exist");
      auto it = parent->Begin() + idx;
      removed->Swap(*it);
      parent->Erase(it);
      return Status::Ok();
    }
    return Error("path does not exist");
  }

  rapidjson::Document& doc_;
  const JsonPatchOptions& options_;
  std::size_t index_ = 0;
  std::string op_;
  std::string path_;
  std::size_t copied_nodes_ = 0;
};

}  // namespace

Status ApplyMergePatch(Value& target, const Value& patch, Allocator& allocator) {
  Value work(target, allocator);  // deep copy: safe even if patch lives inside target
  MergePatchInto(work, patch, allocator);
  target.Swap(work);
  return Status::Ok();
}

Result<std::vector<std::string>> ParseJsonPointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') {
    return Status::InvalidArgument("invalid JSON pointer \"" + std::string(pointer) +
                                   "\": must be empty or start with '/'");
  }
  std::string cur;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    char c = pointer[i];
    if (c == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        cur.push_back(pointer[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        return Status::InvalidArgument("invalid JSON pointer \"" + std::string(pointer) +
                                       "\": '~' must be followed by '0' or '1'");
      }
    } else {
      cur.push_back(c);
    }
  }
  return tokens;
}

std::string EscapeJsonPointerToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status ApplyJsonPatch(rapidjson::Document& doc, const Value& patch,
                      const JsonPatchOptions& options) {
  rapidjson::Document work;
  work.CopyFrom(doc, work.GetAllocator());
  JsonPatcher patcher(work, options);
  RC_RETURN_IF_ERROR(patcher.Apply(patch));
  doc.Swap(work);
  return Status::Ok();
}

}  // namespace rc::apimachinery
