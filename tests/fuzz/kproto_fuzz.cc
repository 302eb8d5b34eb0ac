// libFuzzer target for rc::kproto::DecodeToJson. Built only with -DRC_BUILD_FUZZERS=ON (clang).
// Every input must yield a Document or an InvalidArgument Status — never crash, hang or overflow.
// Seed corpus: tests/kproto/testdata/*.pb (real kubectl request bodies). Inputs without the
// "k8s\0" magic are also tried with it prepended, so mutations reach the protobuf decoder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rc/kproto/kproto.h"

namespace {

void Check(std::string_view body) {
  auto doc = rc::kproto::DecodeToJson(body);
  if (doc.ok()) {
    if (!doc->IsObject() || !doc->HasMember("kind") || !doc->HasMember("apiVersion")) __builtin_trap();
  } else if (doc.status().code() != rc::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Check(input);
  if (!rc::kproto::IsKubernetesProtobuf(input)) Check(std::string("k8s\0", 4) + std::string(input));
  return 0;
}
