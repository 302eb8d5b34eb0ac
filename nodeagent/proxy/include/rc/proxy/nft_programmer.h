// Programs a Rendered ruleset into one nftables table (family ip) through libnftnl/libmnl netlink
// batches. Every Apply* is one transaction: the kernel shows the old or the new ruleset, never
// half. Touches no table but its own.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <functional>
#include <set>
#include <string>

#include "rc/base/status.h"
#include "rc/proxy/ruleset.h"

struct mnl_socket;

struct nftnl_set_elem;  // libnftnl

namespace rc::proxy {

struct NftProgrammerOptions {
  std::string table = "rc-proxy";
  // A network namespace to program (a path like /run/netns/NAME or /proc/PID/ns/net); empty:
  // the caller's. The netlink socket is opened inside it, the caller's threads stay where they are.
  std::string netns;
};

struct TransactionStats {
  size_t messages = 0;
  size_t bytes = 0;
};

class NftProgrammer {
 public:
  static Result<std::unique_ptr<NftProgrammer>> Open(NftProgrammerOptions options);
  ~NftProgrammer();
  NftProgrammer(const NftProgrammer&) = delete;
  NftProgrammer& operator=(const NftProgrammer&) = delete;

  // Replaces the table's whole content with `to` (the table is created if missing).
  [[nodiscard]] Status ApplyFull(const Rendered& to, TransactionStats* stats = nullptr);
  // Changes the table from `from` (what is programmed) to `to`: only the service ports that
  // differ. Shared objects must be equal in both (else use ApplyFull).
  [[nodiscard]] Status ApplyDelta(const Rendered& from, const Rendered& to, TransactionStats* stats = nullptr);
  // Deletes the table (ok if it does not exist).
  [[nodiscard]] Status DeleteTable();
  // Reads the table back (chains, rule tags, static set elements). NotFound if there is no table.
  Result<Fingerprint> ReadFingerprint();

  // Failure injection: the next `n` transactions carry a deliberately invalid message (a rule in
  // a chain that does not exist) so the kernel aborts them whole.
  void InjectFailures(int n) { inject_failures_.store(n); }
  const std::string& table() const { return options_.table; }

 private:
  explicit NftProgrammer(NftProgrammerOptions options) : options_(std::move(options)) {}
  class Batch;
  Status Commit(Batch& batch, TransactionStats* stats);
  // Calls `each` with every element of our table's set `set_name` (a netlink dump).
  Status DumpSetElements(const std::string& set_name, const std::function<void(nftnl_set_elem*)>& each);
  // Deletes the entries of affinity map `set` whose endpoint (data) is not in `allowed`.
  void PruneAffinity(const std::string& set, const std::set<std::string>& allowed);

  NftProgrammerOptions options_;
  std::mutex mu_;  // one transaction at a time on the socket
  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 1;
  std::atomic<int> inject_failures_{0};
};

}  // namespace rc::proxy
