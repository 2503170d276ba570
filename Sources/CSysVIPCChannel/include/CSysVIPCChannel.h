// The C side of SysVIPCChannel: atomic operations on words in a shared memory segment (Swift's
// own atomics cannot be placed on memory the program did not allocate). The channel's semaphore
// calls go through SysVIPC's system-call layer (Core/PackageAccess.swift). All static inline, so that the
// fast path of a channel compiles to plain loads, stores and locked instructions.
#ifndef CSYSVIPCCHANNEL_H
#define CSYSVIPCCHANNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint64_t csvc_load64_acquire(const void *p) {
  return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}
static inline uint64_t csvc_load64_relaxed(const void *p) {
  return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
}
static inline void csvc_store64_release(void *p, uint64_t v) {
  __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}
static inline void csvc_store64_relaxed(void *p, uint64_t v) {
  __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}
static inline void csvc_store64_seqcst(void *p, uint64_t v) {
  __atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
}
/// Compare-and-swap, strong, acquire-release; returns whether it swapped.
static inline _Bool csvc_cas64(void *p, uint64_t expected, uint64_t desired) {
  return __atomic_compare_exchange_n((uint64_t *)p, &expected, desired, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}
static inline uint32_t csvc_load32_seqcst(const void *p) {
  return __atomic_load_n((const uint32_t *)p, __ATOMIC_SEQ_CST);
}
static inline uint32_t csvc_load32_relaxed(const void *p) {
  return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}
static inline void csvc_store32_seqcst(void *p, uint32_t v) {
  __atomic_store_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
}
static inline _Bool csvc_cas32(void *p, uint32_t expected, uint32_t desired) {
  return __atomic_compare_exchange_n((uint32_t *)p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST);
}
static inline uint32_t csvc_add32(void *p, uint32_t v) {
  return __atomic_fetch_add((uint32_t *)p, v, __ATOMIC_SEQ_CST);
}
static inline uint32_t csvc_exchange32(void *p, uint32_t v) {
  return __atomic_exchange_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
}
/// A full fence: orders a publishing store before the load of a sleepers word (and the reverse).
static inline void csvc_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/// The spin-wait hint (`pause` on x86, `yield` on ARM).
static inline void csvc_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/// Whether process `pid` exists (kill(pid, 0) does not fail with ESRCH).
int csvc_process_exists(int32_t pid);

/// How many CPUs are online.
int csvc_cpus_online(void);

/// This process's PID namespace: the inode number of /proc/self/ns/pid, or 0 where it cannot be
/// read (no /proc, or not Linux).
uint64_t csvc_pid_namespace(void);

/// The monotonic clock in nanoseconds.
int64_t csvc_now_ns(void);

/// The SEM_UNDO and IPC_NOWAIT flags, for Swift.
extern const int16_t csvc_sem_undo;
extern const int16_t csvc_ipc_nowait;

#ifdef __cplusplus
}
#endif

#endif
