// Leader election through optimistic concurrency on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection: the holder renews spec.renewTime every retry period; a candidate takes over when
// the record has not changed for leaseDurationSeconds *as observed on its own clock* (no clock
// comparison between processes); every write carries the resourceVersion read, so two candidates
// can never both win (409 Conflict for the loser).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"

namespace rc::controller {

struct LeaderElectionConfig {
  std::string lease_namespace = "kube-system";
  std::string lease_name = "rc-controller-manager";
  std::string identity;  // unique per process (hostname_pid_random)
  std::chrono::milliseconds lease_duration{2000};
  std::chrono::milliseconds renew_deadline{1500};  // a leader that cannot renew this long steps down
  std::chrono::milliseconds retry_period{250};
  bool release_on_stop = true;  // false: Stop behaves like a crash (tests)
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
};

class LeaderElector {
 public:
  LeaderElector(client::RestClient* client, LeaderElectionConfig config);
  ~LeaderElector();
  void Start();
  // Stops campaigning; a leader releases the lease (empty holder) so a successor need not wait.
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  const std::string& identity() const { return config_.identity; }

  // One acquire-or-renew attempt (exposed for tests). True when this process holds the lease.
  Result<bool> TryAcquireOrRenew();

 private:
  void Run();
  void SetLeading(bool leading);
  Status Release();
  std::string LeasePath() const;

  client::RestClient* client_;
  LeaderElectionConfig config_;
  std::atomic<bool> leading_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  // What we last saw of the record, and when (our clock).
  std::string observed_holder_, observed_renew_;
  std::string observed_rv_;
  std::chrono::steady_clock::time_point observed_at_{};
  std::chrono::steady_clock::time_point last_renew_{};
};

// RFC 3339 with microseconds (metav1.MicroTime) for now.
std::string NowMicroTime();
// RFC 3339 seconds (metav1.Time) for now.
std::string NowTime();

}  // namespace rc::controller
