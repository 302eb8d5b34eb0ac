// The node's local image store: images imported from OCI image layouts (directory or tarball) or
// docker-save tarballs, unpacked once into a rootfs per image (whiteouts applied), with the parts
// of the image config the runtime needs. Thread-safe.
//
// Layout: DIR/images/<id>/{rootfs/,image.json}, DIR/refs.json (normalised ref -> id). <id> is the
// hex of the image config's sha256 digest.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "rc/base/status.h"

namespace rc::nodeagent {

struct ImageConfig {
  std::vector<std::string> entrypoint, cmd, env;  // env as "K=V"
  std::string working_dir;
};

struct Image {
  std::string id;
  std::vector<std::string> refs;  // normalised
  std::string rootfs;             // absolute path of the unpacked root filesystem (read-only use)
  ImageConfig config;
};

// busybox, busybox:latest, library/busybox and docker.io/library/busybox:latest all give
// "docker.io/library/busybox:latest"; a registry host (has '.' or ':' or is localhost) is kept;
// digests (@sha256:...) are kept and get no tag.
std::string NormalizeImageRef(const std::string& ref);

class ImageStore {
 public:
  explicit ImageStore(std::string dir);

  // Imports every image of an OCI layout directory, an OCI layout tarball or a docker-save
  // tarball. Images are named by their annotations (io.containerd.image.name,
  // org.opencontainers.image.ref.name) or RepoTags; `name` (optional) names an image that has
  // none or only a bare tag ("latest"). Returns the refs imported (normalised).
  Result<std::vector<std::string>> Import(const std::string& path, const std::string& name = "");
  // Ref (any spelling), or "sha256:<id>" / "<id>".
  bool Has(const std::string& ref);
  Result<Image> Get(const std::string& ref);
  Result<std::vector<Image>> List();
  // Removes the ref; the image's files go when no ref names it any more.
  Status Remove(const std::string& ref);

  const std::string& dir() const { return dir_; }

 private:
  Result<std::string> Resolve(const std::string& ref);  // -> id; mu_ held
  Status Tag(const std::string& id, const std::vector<std::string>& refs);

  const std::string dir_;
  std::mutex mu_;
};

}  // namespace rc::nodeagent
