#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "CBenchSupport.h"

#include <errno.h>
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

int bench_allowed_cpus(int *out, int max) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  int n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++) {
    if (CPU_ISSET(cpu, &set)) out[n++] = cpu;
  }
  return n;
#else
  (void)out;
  (void)max;
  errno = ENOSYS;
  return -1;
#endif
}

int bench_pin_cpu(int cpu) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set);
#else
  (void)cpu;
  errno = ENOSYS;
  return -1;
#endif
}

int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_parent_death_signal(int sig) {
#if defined(__linux__)
  return prctl(PR_SET_PDEATHSIG, sig);
#else
  (void)sig;
  return 0;
#endif
}
