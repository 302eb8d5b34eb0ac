// Internal: running helper programs (runc, tar, CNI plugins) with captured output and a timeout.
#pragma once

#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "rc/base/status.h"

namespace rc::nodeagent::internal {

struct ProcessResult {
  int exit_code = 0;   // 128+N when killed by signal N
  std::string out, err;
  bool timed_out = false;
};

struct ProcessOptions {
  std::vector<std::string> env;   // "K=V"; empty: inherit the caller's environment
  std::string stdin_data;
  int timeout_ms = 60000;
  std::string netns_path;         // setns into this network namespace before exec
  bool merge_stderr = false;      // stderr goes to `out`
  std::string pid_file_to_kill;   // on timeout, also SIGKILL the pid written in this file
};

// Fork/execs argv[0] (a path) and waits. Fails only when the program cannot be started.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options);

// File helpers.
Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomic(const std::string& path, const std::string& data);
Status MakeDirs(const std::string& path);
Status RemoveAll(const std::string& path);
std::string RandomHex(int bytes);
int64_t NowUnix();
// Start time of a process (field 22 of /proc/PID/stat); 0 when not running.
uint64_t ProcessStartTime(int pid);
std::string SelfDir();

// Compact JSON of a value.
std::string ToJson(const rapidjson::Value& v);
// A file's JSON; kInvalidArgument ("<path> is not valid JSON") when it does not parse.
Result<rapidjson::Document> ParseJsonFile(const std::string& path);

}  // namespace rc::nodeagent::internal
