#include "CSysVIPCChannel.h"

#include <errno.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>
#include <unistd.h>

const int16_t csvc_sem_undo = SEM_UNDO;
const int16_t csvc_ipc_nowait = IPC_NOWAIT;

int64_t csvc_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int csvc_semop(int32_t semid, uint16_t index, int16_t delta, int16_t flags, int64_t timeout_ns) {
  struct sembuf op = {.sem_num = index, .sem_op = delta, .sem_flg = flags};
  int64_t deadline = timeout_ns >= 0 ? csvc_now_ns() + timeout_ns : 0;
  for (;;) {
    int rc;
#if defined(__linux__)
    if (timeout_ns >= 0) {
      int64_t left = deadline - csvc_now_ns();
      if (left < 0) left = 0;
      struct timespec t = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
      rc = semtimedop(semid, &op, 1, &t);
    } else {
      rc = semop(semid, &op, 1);
    }
#else
    // No semtimedop (macOS): poll without blocking in short steps until the deadline.
    if (timeout_ns >= 0 && !(flags & IPC_NOWAIT)) {
      op.sem_flg = flags | IPC_NOWAIT;
      rc = semop(semid, &op, 1);
      if (rc != 0 && errno == EAGAIN && csvc_now_ns() < deadline) {
        struct timespec step = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&step, NULL);
        continue;
      }
    } else {
      rc = semop(semid, &op, 1);
    }
#endif
    if (rc == 0) return 0;
    if (errno == EINTR) continue;
    return errno;
  }
}

int csvc_process_exists(int32_t pid) {
  if (pid <= 0) return 0;
  return !(kill(pid, 0) != 0 && errno == ESRCH);
}

int csvc_cpus_online(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
