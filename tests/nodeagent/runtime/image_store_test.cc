#include "rc/nodeagent/image_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "subprocess.h"

namespace rc::nodeagent {
namespace {

namespace fs = std::filesystem;

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/rctest-images-" + internal::RandomHex(6);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  int Sh(const std::string& script) {
    return std::system(("set -e; cd " + dir_ + "; " + script).c_str());
  }
  std::string dir_;
};

TEST(ImageRef, Normalisation) {
  EXPECT_EQ(NormalizeImageRef("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(NormalizeImageRef("busybox:latest"), "docker.io/library/busybox:latest");
  EXPECT_EQ(NormalizeImageRef("library/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(NormalizeImageRef("docker.io/library/busybox:latest"), "docker.io/library/busybox:latest");
  EXPECT_EQ(NormalizeImageRef("me/app:1.2"), "docker.io/me/app:1.2");
  EXPECT_EQ(NormalizeImageRef("localhost:5000/app"), "localhost:5000/app:latest");
  EXPECT_EQ(NormalizeImageRef("quay.io/x/y:v1"), "quay.io/x/y:v1");
  EXPECT_EQ(NormalizeImageRef("busybox@sha256:abc"), "docker.io/library/busybox@sha256:abc");
}

TEST_F(ImageStoreTest, ImportBusyboxTarball) {
  std::string tar = dir_ + "/busybox.tar";
  ASSERT_EQ(std::system(("bash " RC_SOURCE_DIR "/scripts/build-busybox-image.sh " + tar +
                         " >/dev/null").c_str()),
            0);
  ImageStore store(dir_ + "/store");
  auto refs = store.Import(tar);
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  ASSERT_EQ(*refs, std::vector<std::string>{"docker.io/library/busybox:latest"});
  for (const char* r : {"busybox", "busybox:latest", "docker.io/library/busybox:latest"}) {
    EXPECT_TRUE(store.Has(r)) << r;
  }
  EXPECT_FALSE(store.Has("nginx"));
  auto missing = store.Get("nginx:1.25");
  ASSERT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("nginx:1.25"), std::string::npos);
  auto img = store.Get("busybox");
  ASSERT_TRUE(img.ok());
  EXPECT_TRUE(fs::exists(img->rootfs + "/bin/busybox"));
  EXPECT_TRUE(fs::is_symlink(img->rootfs + "/bin/sh"));
  EXPECT_TRUE(fs::exists(img->rootfs + "/var/www/index.html"));
  EXPECT_EQ(img->config.cmd, std::vector<std::string>{"sh"});
  ASSERT_FALSE(img->config.env.empty());
  EXPECT_EQ(img->config.env[0].rfind("PATH=", 0), 0u);
  // A re-import is a no-op; a new store over the same dir sees the image.
  ASSERT_TRUE(store.Import(tar).ok());
  ImageStore again(dir_ + "/store");
  EXPECT_TRUE(again.Has("busybox"));
  EXPECT_EQ(again.List()->size(), 1u);
  // The OCI layout as a directory, under another name.
  ASSERT_EQ(Sh("mkdir layout && tar -xf busybox.tar -C layout"), 0);
  auto refs2 = store.Import(dir_ + "/layout");
  ASSERT_TRUE(refs2.ok()) << refs2.status().ToString();
  EXPECT_TRUE(store.Remove("busybox").ok());
  EXPECT_FALSE(store.Has("busybox"));
  EXPECT_TRUE(store.Import(dir_ + "/nope.tar").status().IsNotFound());
}

// docker save layout, two layers: the second deletes a file (.wh.) and empties a dir (opaque).
TEST_F(ImageStoreTest, DockerSaveWithWhiteouts) {
  ASSERT_EQ(Sh("mkdir -p l1/etc l1/data/old l2/etc l2/data && echo a > l1/etc/keep && "
               "echo b > l1/etc/gone && echo c > l1/data/old/x && echo d > l1/data/y && "
               "touch l2/etc/.wh.gone && touch l2/data/.wh..wh..opq && echo e > l2/data/new && "
               "mkdir -p save/l1 save/l2 && tar -C l1 -cf save/l1/layer.tar . && "
               "tar -C l2 -cf save/l2/layer.tar . && "
               "echo '{\"config\":{\"Entrypoint\":[\"/bin/app\"],\"Cmd\":[\"--flag\"],"
               "\"Env\":[\"A=1\"],\"WorkingDir\":\"/data\"}}' > save/cfg.json && "
               "echo '[{\"Config\":\"cfg.json\",\"RepoTags\":[\"me/app:v1\"],"
               "\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}]' > save/manifest.json && "
               "tar -C save -cf app.tar ."),
            0);
  ImageStore store(dir_ + "/store");
  auto refs = store.Import(dir_ + "/app.tar");
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  EXPECT_EQ(*refs, std::vector<std::string>{"docker.io/me/app:v1"});
  auto img = store.Get("me/app:v1");
  ASSERT_TRUE(img.ok());
  EXPECT_TRUE(fs::exists(img->rootfs + "/etc/keep"));
  EXPECT_FALSE(fs::exists(img->rootfs + "/etc/gone"));
  EXPECT_FALSE(fs::exists(img->rootfs + "/etc/.wh.gone"));
  EXPECT_FALSE(fs::exists(img->rootfs + "/data/old"));
  EXPECT_FALSE(fs::exists(img->rootfs + "/data/y"));
  EXPECT_TRUE(fs::exists(img->rootfs + "/data/new"));
  EXPECT_FALSE(fs::exists(img->rootfs + "/data/.wh..wh..opq"));
  EXPECT_EQ(img->config.entrypoint, std::vector<std::string>{"/bin/app"});
  EXPECT_EQ(img->config.cmd, std::vector<std::string>{"--flag"});
  EXPECT_EQ(img->config.working_dir, "/data");
}

TEST_F(ImageStoreTest, GarbageIsRefused) {
  ASSERT_EQ(Sh("mkdir junk && echo hi > junk/x && tar -C junk -cf junk.tar ."), 0);
  ImageStore store(dir_ + "/store");
  auto r = store.Import(dir_ + "/junk.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rc::nodeagent
