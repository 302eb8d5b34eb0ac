// rc-shim: one per container, like containerd-shim / conmon. Detaches from the agent (own
// session, ignores the agent's signals), becomes a child subreaper, runs `runc create` +
// `runc start` with the container's stdout/stderr appended to the log file, reports readiness on
// fd 3 ("ok PID CREATE_US START_US" or "err MESSAGE"), then waits for the container's init
// (reparented to it when runc exits) and writes "EXIT_CODE FINISHED_AT_UNIX REASON" to
// STATE/exit before exiting. The container therefore outlives the agent and its exit code is
// known to an agent started later.
//
// usage: rc-shim RUNC RUNC_ROOT BUNDLE ID STATE_DIR LOG_PATH [MEMORY_CGROUP_DIR]
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAtomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << data;
  }
  rename(tmp.c_str(), path.c_str());
}

// Runs runc with the given stdio; returns its wait status.
int RunRunc(const std::vector<std::string>& argv, int out_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string Tail(const std::string& s, size_t n) {
  std::string t = s.size() > n ? s.substr(s.size() - n) : s;
  for (char& c : t) {
    if (c == '\n') c = ' ';
  }
  return t;
}

void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string l = line + "\n";
  (void)!write(fd, l.data(), l.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: rc-shim RUNC RUNC_ROOT BUNDLE ID STATE_DIR LOG_PATH [MEMCG]\n");
    return 2;
  }
  std::string runc = argv[1], root = argv[2], bundle = argv[3], id = argv[4], state = argv[5],
              log_path = argv[6], memcg = argc > 7 ? argv[7] : "";
  // Detach: the parent returns to the runtime at once; the child carries on in its own session.
  pid_t child = fork();
  if (child < 0) return 1;
  if (child > 0) return 0;
  setsid();
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (chdir(state.c_str()) != 0) return 1;
  int ready_fd = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
  int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, 0);
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  int log_fd = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    Report(ready_fd, "err cannot open log file " + log_path + ": " + strerror(errno));
    return 1;
  }
  std::string runc_log = state + "/runc.log";
  std::string pid_file = state + "/pid";
  int64_t t0 = NowMicros();
  int st = RunRunc({runc, "--root", root, "--log", runc_log, "create", "--bundle", bundle,
                    "--pid-file", pid_file, id},
                   log_fd);
  int64_t t1 = NowMicros();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    Report(ready_fd, "err runc create failed: " + Tail(ReadAll(runc_log), 600));
    RunRunc({runc, "--root", root, "delete", "--force", id}, null_fd);
    return 1;
  }
  int pid = atoi(ReadAll(pid_file).c_str());
  st = RunRunc({runc, "--root", root, "--log", runc_log, "start", id}, log_fd);
  int64_t t2 = NowMicros();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    Report(ready_fd, "err runc start failed: " + Tail(ReadAll(runc_log), 600));
    RunRunc({runc, "--root", root, "delete", "--force", id}, null_fd);
    return 1;
  }
  WriteAtomic(state + "/started", std::to_string(NowUnix()) + "\n");
  Report(ready_fd, "ok " + std::to_string(pid) + " " + std::to_string(t1 - t0) + " " +
                       std::to_string(t2 - t1));
  if (ready_fd >= 0) close(ready_fd);
  close(log_fd);

  int exit_code = -1;
  for (;;) {
    int status = 0;
    pid_t got = waitpid(-1, &status, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: the container's init was not reparented to us (should not happen)
    }
    if (got == pid) {
      exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
  }
  std::string reason = exit_code == 0 ? "Completed" : "Error";
  if (!memcg.empty()) {
    std::string oom = ReadAll(memcg + "/memory.oom_control");
    auto at = oom.find("oom_kill ");
    if (at != std::string::npos && atoi(oom.c_str() + at + 9) > 0) reason = "OOMKilled";
  }
  if (exit_code < 0) reason = "Unknown";
  WriteAtomic(state + "/exit", std::to_string(exit_code) + " " + std::to_string(NowUnix()) + " " +
                                   reason + "\n");
  return 0;
}
