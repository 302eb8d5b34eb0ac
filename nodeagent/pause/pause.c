/* rc-pause: PID 1 of a pod sandbox. The runtime starts it in new net, ipc, uts and pid
 * namespaces; it only holds them: reaps the zombies reparented to it and exits on SIGTERM/SIGINT
 * (the kernel then kills every other process of the pod's PID namespace). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void on_child(int sig) { (void)sig; }

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    puts("rc-pause 1");
    return 0;
  }
  struct sigaction stop = {0};
  stop.sa_handler = on_stop;
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGINT, &stop, NULL);
  struct sigaction child = {0};
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &child, NULL);
  /* Signals are blocked except inside sigsuspend, so none is lost between the check and the wait. */
  sigset_t blocked, empty;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGCHLD);
  sigprocmask(SIG_BLOCK, &blocked, NULL);
  sigemptyset(&empty);
  while (!stop_requested) {
    sigsuspend(&empty);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  return 0;
}
