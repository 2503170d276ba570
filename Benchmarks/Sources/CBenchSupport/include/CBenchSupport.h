// Support for the Swift benchmark that is not under test: pinning, the clock, the child's
// parent-death signal. The C benchmark (c/ipc-bench.c) does the same things itself.
#ifndef CBENCHSUPPORT_H
#define CBENCHSUPPORT_H

#include <stdint.h>

/// Writes up to `max` CPUs this process may run on (sched_getaffinity) to `out`; returns how
/// many, or -1 with errno.
int bench_allowed_cpus(int *out, int max);

/// Pins the calling process to one CPU (sched_setaffinity). Returns 0, or -1 with errno.
int bench_pin_cpu(int cpu);

/// CLOCK_MONOTONIC in nanoseconds.
int64_t bench_now_ns(void);

/// prctl(PR_SET_PDEATHSIG, sig): the child dies with its parent. Returns 0, or -1 with errno.
int bench_parent_death_signal(int sig);

#endif
