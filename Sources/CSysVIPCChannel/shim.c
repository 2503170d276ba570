#include "CSysVIPCChannel.h"

#include <errno.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const int16_t csvc_sem_undo = SEM_UNDO;
const int16_t csvc_ipc_nowait = IPC_NOWAIT;

int64_t csvc_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int csvc_process_exists(int32_t pid) {
  if (pid <= 0) return 0;
  return !(kill(pid, 0) != 0 && errno == ESRCH);
}

int csvc_cpus_online(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

uint64_t csvc_pid_namespace(void) {
#if defined(__linux__)
  struct stat st;
  if (stat("/proc/self/ns/pid", &st) == 0) return (uint64_t)st.st_ino;
#endif
  return 0;
}
