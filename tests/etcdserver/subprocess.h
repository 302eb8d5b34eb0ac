// Minimal subprocess helper for tests: run a command to completion (with stdin, a timeout and
// captured output), or keep one running in the background and read its stdout incrementally.
// Every child is killed (SIGKILL) and reaped when its owner goes away, also when a test fails.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace rc::testing {

struct RunResult {
  int exit_code = -1;  // -1: killed (timeout) or failed to start
  std::string out;
  std::string err;
  bool timed_out = false;
};

class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess() { Kill(); }

  // Starts argv[0] (looked up in PATH) with `env_overrides` added to the environment. stdin is
  // a pipe (see WriteStdin/CloseStdin), stdout and stderr are pipes read by ReadUntil/Wait.
  bool Start(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env_overrides = {}) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return false;
    if (pipe2(out, O_CLOEXEC) != 0) return false;
    if (pipe2(err, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    // Own process group, so Kill() also reaches grandchildren.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);

    std::vector<std::string> env_storage;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      std::string k = kv.substr(0, kv.find('='));
      if (env_overrides.count(k) == 0) env_storage.push_back(kv);
    }
    for (const auto& [k, v] : env_overrides) env_storage.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_storage) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& s : args) cargv.push_back(s.data());
    cargv.push_back(nullptr);

    int rc = posix_spawnp(&pid_, cargv[0], &actions, &attr, cargv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
      pid_ = -1;
      close(in[1]);
      close(out[0]);
      close(err[0]);
      return false;
    }
    stdin_ = in[1];
    stdout_ = out[0];
    stderr_ = err[0];
    fcntl(stdout_, F_SETFL, O_NONBLOCK);
    fcntl(stderr_, F_SETFL, O_NONBLOCK);
    return true;
  }

  pid_t pid() const { return pid_; }

  void WriteStdin(const std::string& data) {
    size_t off = 0;
    while (stdin_ >= 0 && off < data.size()) {
      ssize_t n = write(stdin_, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  void CloseStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }

  // Reads stdout/stderr until pred(stdout so far) holds, both pipes close, or the timeout.
  bool ReadUntil(const std::function<bool(const std::string&)>& pred,
                 std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred(out_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!PollOnce(static_cast<int>(std::min<int64_t>(left.count(), 100)))) {
        return pred(out_);  // both pipes at EOF
      }
    }
    return true;
  }

  // Waits for exit (killing the child at the timeout) and returns everything it wrote.
  RunResult Wait(std::chrono::milliseconds timeout) {
    RunResult r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    CloseStdin();
    while (stdout_ >= 0 || stderr_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        r.timed_out = true;
        break;
      }
      PollOnce(static_cast<int>(std::min<int64_t>(left.count(), 100)));
    }
    if (r.timed_out) {
      Kill();
    } else {
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    r.out = out_;
    r.err = err_;
    return r;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  // SIGKILLs the process group and reaps the child. Idempotent.
  void Kill() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    CloseStdin();
    if (stdout_ >= 0) close(stdout_);
    if (stderr_ >= 0) close(stderr_);
    stdout_ = stderr_ = -1;
  }

 private:
  // Returns false when both pipes are at EOF.
  bool PollOnce(int timeout_ms) {
    pollfd fds[2];
    int n = 0;
    if (stdout_ >= 0) fds[n++] = {stdout_, POLLIN, 0};
    if (stderr_ >= 0) fds[n++] = {stderr_, POLLIN, 0};
    if (n == 0) return false;
    if (poll(fds, n, timeout_ms) <= 0) return true;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      int& fd = fds[i].fd == stdout_ ? stdout_ : stderr_;
      std::string& buf = fds[i].fd == stdout_ ? out_ : err_;
      char chunk[8192];
      for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got > 0) {
          buf.append(chunk, static_cast<size_t>(got));
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          close(fd);
          fd = -1;
        }
        break;
      }
    }
    return stdout_ >= 0 || stderr_ >= 0;
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::string out_;
  std::string err_;
};

// Runs a command to completion.
inline RunResult Run(const std::vector<std::string>& argv, const std::string& input = "",
                     std::chrono::milliseconds timeout = std::chrono::seconds(30),
                     const std::map<std::string, std::string>& env = {}) {
  Subprocess p;
  if (!p.Start(argv, env)) {
    RunResult r;
    r.err = "cannot start " + argv[0] + ": " + std::strerror(errno);
    return r;
  }
  p.WriteStdin(input);
  return p.Wait(timeout);
}

}  // namespace rc::testing
