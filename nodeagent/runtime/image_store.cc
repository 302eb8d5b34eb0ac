#include "rc/nodeagent/image_store.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "subprocess.h"

namespace rc::nodeagent {
namespace {

namespace fs = std::filesystem;
using internal::ParseJsonFile;
using internal::ReadFile;
using internal::ToJson;
using internal::RunProcess;

std::string TarPath() {
  for (const char* p : {"/usr/bin/tar", "/bin/tar"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "tar";
}

Status RunTar(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::vector<std::string> argv = {TarPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  internal::ProcessOptions opts;
  opts.timeout_ms = 600000;
  auto r = RunProcess(argv, opts);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return Status::IOError("tar " + (args.empty() ? "" : args[0]) + " failed: " + r->err);
  }
  if (out) *out = std::move(r->out);
  return Status::Ok();
}

std::vector<std::string> StringArray(const rapidjson::Value& obj, const char* key) {
  std::vector<std::string> out;
  if (!obj.IsObject() || !obj.HasMember(key) || !obj[key].IsArray()) return out;
  for (const auto& v : obj[key].GetArray()) {
    if (v.IsString()) out.emplace_back(v.GetString());
  }
  return out;
}

ImageConfig ConfigFromImageJson(const rapidjson::Value& image) {
  ImageConfig c;
  if (!image.IsObject() || !image.HasMember("config") || !image["config"].IsObject()) return c;
  const auto& cfg = image["config"];
  c.entrypoint = StringArray(cfg, "Entrypoint");
  c.cmd = StringArray(cfg, "Cmd");
  c.env = StringArray(cfg, "Env");
  if (cfg.HasMember("WorkingDir") && cfg["WorkingDir"].IsString()) {
    c.working_dir = cfg["WorkingDir"].GetString();
  }
  return c;
}

std::string DigestPath(const std::string& layout, const std::string& digest) {
  auto colon = digest.find(':');
  if (colon == std::string::npos) return layout + "/blobs/sha256/" + digest;
  return layout + "/blobs/" + digest.substr(0, colon) + "/" + digest.substr(colon + 1);
}

bool SafeRelative(const std::string& p) {
  for (const auto& part : fs::path(p)) {
    if (part == "..") return false;
  }
  return true;
}

// Applies one layer tarball to rootfs: whiteouts first (.wh.NAME removes NAME from the layers
// below, .wh..wh..opq empties the directory), then the layer's files.
Status ApplyLayer(const std::string& layer, const std::string& rootfs) {
  std::string listing;
  RC_RETURN_IF_ERROR(RunTar({"-tf", layer}, &listing));
  std::istringstream lines(listing);
  std::string entry;
  bool has_whiteouts = false;
  while (std::getline(lines, entry)) {
    fs::path p(entry);
    std::string base = p.filename().string();
    if (base.rfind(".wh.", 0) != 0) continue;
    has_whiteouts = true;
    if (!SafeRelative(entry)) continue;
    fs::path dir = fs::path(rootfs) / p.parent_path();
    std::error_code ec;
    if (base == ".wh..wh..opq") {
      if (fs::is_directory(fs::symlink_status(dir, ec))) {
        for (const auto& child : fs::directory_iterator(dir, ec)) fs::remove_all(child.path(), ec);
      }
    } else {
      fs::remove_all(dir / base.substr(4), ec);
    }
  }
  std::vector<std::string> args = {"-xf", layer, "-C", rootfs, "--numeric-owner"};
  if (has_whiteouts) args.push_back("--exclude=.wh.*");
  return RunTar(args);
}

struct PendingImage {
  std::string config_path;
  std::vector<std::string> layer_paths;
  std::vector<std::string> refs;
  std::string id;  // hex of the config digest
};

std::string Sha256Hex(const std::string& path) {
  internal::ProcessOptions opts;
  auto r = RunProcess({"/usr/bin/sha256sum", path}, opts);
  if (!r.ok() || r->exit_code != 0) return "";
  return r->out.substr(0, 64);
}

void AddRef(PendingImage* img, const std::string& raw, const std::string& name) {
  if (raw.empty()) return;
  bool bare_tag = raw.find('/') == std::string::npos && raw.find(':') == std::string::npos &&
                  raw.find('@') == std::string::npos;
  if (bare_tag && !name.empty()) {
    std::string repo = NormalizeImageRef(name);
    auto slash = repo.rfind('/');
    auto colon = repo.rfind(':');
    if (colon != std::string::npos && colon > slash) repo = repo.substr(0, colon);
    img->refs.push_back(repo + ":" + raw);
    return;
  }
  if (bare_tag) return;  // a tag without a repository name
  img->refs.push_back(NormalizeImageRef(raw));
}

Status CollectOciManifest(const std::string& layout, const rapidjson::Value& desc,
                          const std::vector<std::string>& names, const std::string& name,
                          std::vector<PendingImage>* out, int depth) {
  if (depth > 4) return Status::InvalidArgument("OCI index nesting too deep");
  if (!desc.IsObject() || !desc.HasMember("digest") || !desc["digest"].IsString()) {
    return Status::InvalidArgument("OCI descriptor without digest");
  }
  auto doc = ParseJsonFile(DigestPath(layout, desc["digest"].GetString()));
  if (!doc.ok()) return doc.status();
  if (doc->HasMember("manifests") && (*doc)["manifests"].IsArray()) {
    // An image index: pick linux/amd64, else the first.
    const rapidjson::Value* pick = nullptr;
    for (const auto& m : (*doc)["manifests"].GetArray()) {
      if (!pick) pick = &m;
      if (m.HasMember("platform") && m["platform"].IsObject()) {
        const auto& p = m["platform"];
        if (p.HasMember("architecture") && p["architecture"] == "amd64" && p.HasMember("os") &&
            p["os"] == "linux") {
          pick = &m;
          break;
        }
      }
    }
    if (!pick) return Status::InvalidArgument("empty OCI image index");
    return CollectOciManifest(layout, *pick, names, name, out, depth + 1);
  }
  if (!doc->HasMember("config") || !(*doc)["config"].HasMember("digest")) {
    return Status::InvalidArgument("OCI manifest without config");
  }
  PendingImage img;
  std::string config_digest = (*doc)["config"]["digest"].GetString();
  img.config_path = DigestPath(layout, config_digest);
  img.id = config_digest.substr(config_digest.find(':') + 1);
  if (doc->HasMember("layers") && (*doc)["layers"].IsArray()) {
    for (const auto& l : (*doc)["layers"].GetArray()) {
      if (!l.HasMember("digest")) continue;
      img.layer_paths.push_back(DigestPath(layout, l["digest"].GetString()));
    }
  }
  for (const auto& n : names) AddRef(&img, n, name);
  if (img.refs.empty() && !name.empty()) img.refs.push_back(NormalizeImageRef(name));
  out->push_back(std::move(img));
  return Status::Ok();
}

Result<std::vector<PendingImage>> ReadLayout(const std::string& root, const std::string& name) {
  std::vector<PendingImage> images;
  if (fs::exists(root + "/index.json")) {
    auto index = ParseJsonFile(root + "/index.json");
    if (!index.ok()) return index.status();
    if (!index->HasMember("manifests") || !(*index)["manifests"].IsArray()) {
      return Status::InvalidArgument("index.json has no manifests");
    }
    for (const auto& m : (*index)["manifests"].GetArray()) {
      std::vector<std::string> names;
      if (m.HasMember("annotations") && m["annotations"].IsObject()) {
        const auto& a = m["annotations"];
        if (a.HasMember("io.containerd.image.name") && a["io.containerd.image.name"].IsString()) {
          names.emplace_back(a["io.containerd.image.name"].GetString());
        } else if (a.HasMember("org.opencontainers.image.ref.name") &&
                   a["org.opencontainers.image.ref.name"].IsString()) {
          names.emplace_back(a["org.opencontainers.image.ref.name"].GetString());
        }
      }
      RC_RETURN_IF_ERROR(CollectOciManifest(root, m, names, name, &images, 0));
    }
    return images;
  }
  if (fs::exists(root + "/manifest.json")) {  // docker save
    auto manifest = ParseJsonFile(root + "/manifest.json");
    if (!manifest.ok()) return manifest.status();
    if (!manifest->IsArray()) return Status::InvalidArgument("manifest.json is not an array");
    for (const auto& m : manifest->GetArray()) {
      if (!m.IsObject() || !m.HasMember("Config") || !m["Config"].IsString()) {
        return Status::InvalidArgument("manifest.json entry without Config");
      }
      PendingImage img;
      img.config_path = root + "/" + m["Config"].GetString();
      if (!SafeRelative(m["Config"].GetString())) {
        return Status::InvalidArgument("bad Config path");
      }
      for (const auto& l : StringArray(m, "Layers")) {
        if (!SafeRelative(l)) return Status::InvalidArgument("bad layer path " + l);
        img.layer_paths.push_back(root + "/" + l);
      }
      for (const auto& t : StringArray(m, "RepoTags")) AddRef(&img, t, name);
      if (img.refs.empty() && !name.empty()) img.refs.push_back(NormalizeImageRef(name));
      img.id = Sha256Hex(img.config_path);
      if (img.id.empty()) return Status::IOError("cannot hash " + img.config_path);
      images.push_back(std::move(img));
    }
    return images;
  }
  return Status::InvalidArgument(root + " is neither an OCI image layout nor a docker-save archive");
}

}  // namespace

std::string NormalizeImageRef(const std::string& ref) {
  std::string r = ref;
  if (r.empty()) return r;
  std::string digest;
  if (auto at = r.find('@'); at != std::string::npos) {
    digest = r.substr(at);
    r = r.substr(0, at);
  }
  std::string domain, rest;
  auto slash = r.find('/');
  if (slash == std::string::npos) {
    domain = "docker.io";
    rest = r;
  } else {
    std::string first = r.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      domain = first;
      rest = r.substr(slash + 1);
    } else {
      domain = "docker.io";
      rest = r;
    }
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (domain == "docker.io" && rest.find('/') == std::string::npos) rest = "library/" + rest;
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  bool has_tag = colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash);
  if (!has_tag && digest.empty()) rest += ":latest";
  return domain + "/" + rest + digest;
}

ImageStore::ImageStore(std::string dir) : dir_(fs::absolute(dir).string()) {
  (void)internal::MakeDirs(dir_ + "/images");
  (void)internal::MakeDirs(dir_ + "/tmp");
}

Result<std::vector<std::string>> ImageStore::Import(const std::string& path,
                                                    const std::string& name) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return Status::NotFound("image archive " + path + " not found");
  std::string tmp = dir_ + "/tmp/import-" + internal::RandomHex(8);
  RC_RETURN_IF_ERROR(internal::MakeDirs(tmp));
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)internal::RemoveAll(dir); }
  } cleanup{tmp};
  std::string layout = path;
  if (!fs::is_directory(st)) {
    layout = tmp + "/archive";
    RC_RETURN_IF_ERROR(internal::MakeDirs(layout));
    RC_RETURN_IF_ERROR(RunTar({"-xf", path, "-C", layout, "--no-same-owner"}));
  }
  auto pending = ReadLayout(layout, name);
  if (!pending.ok()) return pending.status();
  std::vector<std::string> imported;
  for (auto& img : *pending) {
    std::string final_dir = dir_ + "/images/" + img.id;
    if (!fs::exists(final_dir + "/image.json")) {
      std::string work = tmp + "/image-" + img.id;
      RC_RETURN_IF_ERROR(internal::MakeDirs(work + "/rootfs"));
      for (const auto& layer : img.layer_paths) {
        if (!fs::exists(layer)) return Status::InvalidArgument("layer blob missing: " + layer);
        RC_RETURN_IF_ERROR(ApplyLayer(layer, work + "/rootfs"));
      }
      auto config = ParseJsonFile(img.config_path);
      if (!config.ok()) return config.status();
      ImageConfig c = ConfigFromImageJson(*config);
      rapidjson::Document d(rapidjson::kObjectType);
      auto& a = d.GetAllocator();
      auto arr = [&](const std::vector<std::string>& v) {
        rapidjson::Value x(rapidjson::kArrayType);
        for (const auto& s : v) x.PushBack(rapidjson::Value(s.c_str(), a), a);
        return x;
      };
      d.AddMember("id", rapidjson::Value(img.id.c_str(), a), a);
      d.AddMember("entrypoint", arr(c.entrypoint), a);
      d.AddMember("cmd", arr(c.cmd), a);
      d.AddMember("env", arr(c.env), a);
      d.AddMember("working_dir", rapidjson::Value(c.working_dir.c_str(), a), a);
      RC_RETURN_IF_ERROR(internal::WriteFileAtomic(work + "/image.json", ToJson(d)));
      (void)internal::RemoveAll(final_dir);  // a half-written earlier import
      fs::rename(work, final_dir, ec);
      if (ec && !fs::exists(final_dir + "/image.json")) {
        return Status::IOError("cannot move image into " + final_dir + ": " + ec.message());
      }
    }
    RC_RETURN_IF_ERROR(Tag(img.id, img.refs));
    imported.insert(imported.end(), img.refs.begin(), img.refs.end());
    if (img.refs.empty()) imported.push_back("sha256:" + img.id);
  }
  return imported;
}

Status ImageStore::Tag(const std::string& id, const std::vector<std::string>& refs) {
  std::lock_guard lock(mu_);
  rapidjson::Document d(rapidjson::kObjectType);
  if (auto existing = ParseJsonFile(dir_ + "/refs.json"); existing.ok() && existing->IsObject()) {
    d.Swap(*existing);
  }
  auto& a = d.GetAllocator();
  for (const auto& r : refs) {
    d.RemoveMember(r.c_str());
    d.AddMember(rapidjson::Value(r.c_str(), a), rapidjson::Value(id.c_str(), a), a);
  }
  return internal::WriteFileAtomic(dir_ + "/refs.json", ToJson(d));
}

Result<std::string> ImageStore::Resolve(const std::string& ref) {
  std::string id = ref;
  if (id.rfind("sha256:", 0) == 0) id = id.substr(7);
  if (id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos &&
      fs::exists(dir_ + "/images/" + id + "/image.json")) {
    return id;
  }
  auto refs = ParseJsonFile(dir_ + "/refs.json");
  std::string norm = NormalizeImageRef(ref);
  if (refs.ok() && refs->IsObject() && refs->HasMember(norm.c_str()) &&
      (*refs)[norm.c_str()].IsString()) {
    return std::string((*refs)[norm.c_str()].GetString());
  }
  return Status::NotFound("image \"" + ref + "\" (" + norm + ") is not in the node's image store " +
                          dir_ + "; import it with `rc-agent images import FILE`");
}

bool ImageStore::Has(const std::string& ref) { return Get(ref).ok(); }

Result<Image> ImageStore::Get(const std::string& ref) {
  std::lock_guard lock(mu_);
  auto id = Resolve(ref);
  if (!id.ok()) return id.status();
  std::string d = dir_ + "/images/" + *id;
  auto meta = ParseJsonFile(d + "/image.json");
  if (!meta.ok()) return Status::NotFound("image " + ref + " is damaged: " + meta.status().message());
  Image img;
  img.id = *id;
  img.rootfs = d + "/rootfs";
  img.config.entrypoint = StringArray(*meta, "entrypoint");
  img.config.cmd = StringArray(*meta, "cmd");
  img.config.env = StringArray(*meta, "env");
  if (meta->HasMember("working_dir") && (*meta)["working_dir"].IsString()) {
    img.config.working_dir = (*meta)["working_dir"].GetString();
  }
  if (auto refs = ParseJsonFile(dir_ + "/refs.json"); refs.ok() && refs->IsObject()) {
    for (const auto& m : refs->GetObject()) {
      if (m.value.IsString() && *id == m.value.GetString()) img.refs.emplace_back(m.name.GetString());
    }
  }
  return img;
}

Result<std::vector<Image>> ImageStore::List() {
  std::vector<Image> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ + "/images", ec)) {
    auto img = Get(e.path().filename().string());
    if (img.ok()) out.push_back(std::move(*img));
  }
  return out;
}

Status ImageStore::Remove(const std::string& ref) {
  std::lock_guard lock(mu_);
  auto id = Resolve(ref);
  if (!id.ok()) return id.status();
  rapidjson::Document d(rapidjson::kObjectType);
  if (auto existing = ParseJsonFile(dir_ + "/refs.json"); existing.ok() && existing->IsObject()) {
    d.Swap(*existing);
  }
  d.RemoveMember(NormalizeImageRef(ref).c_str());
  bool still_named = false;
  for (const auto& m : d.GetObject()) {
    if (m.value.IsString() && *id == m.value.GetString()) still_named = true;
  }
  RC_RETURN_IF_ERROR(internal::WriteFileAtomic(dir_ + "/refs.json", ToJson(d)));
  if (!still_named) return internal::RemoveAll(dir_ + "/images/" + *id);
  return Status::Ok();
}

}  // namespace rc::nodeagent
