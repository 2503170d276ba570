/*
 * sysvipc_channel.h: a message channel in System V shared memory, layout version 1, in C.
 * Single header: include it, link nothing else (Linux: semtimedop). It speaks the same
 * protocol as Swift's SysVIPCChannel.MessageChannel, so C and Swift programs can share a channel
 * (either side may create it, send or receive).
 *
 * OBJECTS
 *   One shared memory segment (header + ring) and one set of 4 semaphores, same key and mode:
 *     sem 0  DATA      the consumer sleeps here (-1); producers post when it sleeps
 *     sem 1  SPACE     producers sleep here when the ring is full; the consumer posts
 *     sem 2  PRODUCERS +1 with SEM_UNDO when a handle first sends: live producers (with the
 *                      single-producer flag: 0 -> 1 in one semop with a wait-for-zero, as CONSUMER)
 *     sem 3  CONSUMER  0 -> 1 with SEM_UNDO when a handle first receives: one consumer at a time
 *
 * HEADER (little-endian, 256 bytes, offsets in bytes)
 *     0  u64 magic       0x4E48434350495653 ("SVIPCCHN"); written LAST, with release order, by
 *                        the creator; 0 = not initialised yet (openers wait, then give up)
 *     8  u32 version     1
 *    12  u32 header size 256
 *    16  u32 capacity    slots, 1..2^24
 *    20  u32 max message size, 1..2^30
 *    24  u32 slot stride = round_up(24 + max message size, 64)
 *    28  i32 semaphore set id
 *    32  u64 segment size = 256 + capacity * stride (<= the segment's real size)
 *    40  u32 producers ever (atomic +1 when a handle registers as a producer)
 *    44  u32 flags       fixed at creation; an opener refuses unknown bits (EPROTO).
 *                        bit 0 SVC_SINGLE_PRODUCER: one producer handle at a time (below)
 *    48  u64 PID namespace of the creator: the inode number of /proc/self/ns/pid, 0 = unknown.
 *            An opener whose own namespace is known and differs refuses the channel (EXDEV):
 *            the consumer tells dead writers by their pids, so every process that uses a
 *            channel must share its creator's PID namespace. 0 (either side) skips the check.
 *    56  u32 removed     set to 1 by a remover before IPC_RMID: claims and polls fail with EIDRM
 *                        (in the first cache line, written only at creation and removal, so
 *                        that reading it on every claim and poll moves no line between sides)
 *    64  u64 tail        next position to claim (producers; any producer may advance it)
 *   128  u32 consumer sleepers   (consumer +1 before it sleeps; a producer takes it and posts)
 *   132  u32 producer sleepers   (each waiting producer +1; the consumer takes and posts)
 *   192  u64 head        next position the consumer reads (recorded for a restarted consumer)
 *   256  slots: capacity x stride bytes
 *
 * SLOT at 256 + (position % capacity) * stride
 *     0  u64 state  = lap << 32 | code, lap = (position / capacity) mod 2^32; code:
 *                     0           free for this lap
 *                     1..2^31-1   claimed by the producer with this pid, being written
 *                     0xFFFFFFFE  abandoned (the writer gave up): the consumer skips it
 *                     0xFFFFFFFF  committed: a message
 *     8  i64 type (> 0)
 *    16  u32 length (<= max message size)
 *    24  payload
 *   A new segment is all zero: slot i is free for position i (lap 0).
 *
 * PRODUCER: t = tail (acquire); s = slot(t); st = s.state (acquire); d = lap(st) - lap(t) (mod 2^32)
 *   d == 0, code free: CAS s.state (lap,0) -> (lap,pid); on success CAS tail t -> t+1 (failure is
 *                      fine: someone helped) and write; else look again.
 *   d == 0, other:     CAS tail t -> t+1 (help), reload tail.
 *   d == -1:           the previous lap's message is still there: FULL (if tail is unchanged).
 *   d > 0:             reload the tail; if it is unchanged and d == 1 (claimed and consumed,
 *                      its writer died before moving the tail): CAS tail t -> t+1; d > 1: corrupt.
 *   otherwise:         corrupt.
 *   Write type, length, payload; then CAS s.state (lap, pid) -> (lap, COMMITTED) (acq-rel): if it
 *   fails, the consumer reclaimed the slot (it took the writer for dead: a producer must share
 *   the consumer's PID namespace) and the message is NOT sent (EPROTO); the state is left alone. Then a
 *   full fence and a load of consumer sleepers: if non-zero, exchange it with 0 and post DATA by
 *   the value taken. A producer that dies before committing leaves its pid in the state: the
 *   consumer sees that process gone (kill(pid, 0) == ESRCH) and frees the slot; nothing of the
 *   message is ever delivered, and no other producer waits for it.
 * SINGLE PRODUCER (flag bit 0): the producer registers exclusively (PRODUCERS 0 -> 1, EBUSY if
 *   another lives) and keeps its own cursor t, starting at the tail. Claim, with no store:
 *   d == 0 and free: claimed; d == -1: FULL; d == 0 and committed or abandoned, or d == 1 and
 *   free: the cursor is stale (its predecessor died after committing, before recording the
 *   tail): t = t+1, look again; anything else: corrupt. Commit: write type, length, payload,
 *   store s.state = (lap, COMMITTED) with release order, store tail = t+1 (relaxed), then the
 *   fence and the consumer sleepers as above. Abandoning leaves the slot free (the next claim
 *   takes it again); a producer that dies before committing leaves it free too, so nothing of
 *   the message is delivered. One thread at a time uses a single-producer handle.
 * CONSUMER: at head h, slot state must be at lap(h) (any other lap is garbage: CAS it to
 *   (lap(h)+1, free), head = h+1, EPROTO); free = empty; committed = read (length is
 *   checked against the max), then store state = (lap+1, free) with release order, head = h+1,
 *   full fence, and post SPACE by the producer sleepers taken (exchange with 0) if non-zero;
 *   abandoned = free it and go on; a pid = being written (or a dead writer: reclaim by CAS
 *   (lap,pid) -> (lap+1,free)).
 * SLEEPING (either side), after a bounded spin: atomically add 1 to the sleepers word (a full
 *   fence), look at the ring again (if ready: subtract 1 unless already 0, go on), else semop -1
 *   on the semaphore (with a timeout of at most 100 ms, in case a waker died between taking the
 *   word and posting); after a timeout subtract 1 unless already 0. A post for a sleeper that
 *   did not sleep stays behind: one spurious wake-up later, never a lost one.
 * UNTRUSTED: every value read from the segment is checked before use; garbage gives EPROTO.
 *
 * Return values: 0, or an errno value: EAGAIN (would wait / timed out), E2BIG (too large),
 * EINVAL (bad argument), EPROTO (not a channel / corrupt), EBUSY (another consumer), EIDRM
 * (removed), EXDEV (created in another PID namespace), or what the system call said.
 */
#ifndef SYSVIPC_CHANNEL_H
#define SYSVIPC_CHANNEL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SVC_MAGIC 0x4E48434350495653ull
#define SVC_VERSION 1u
#define SVC_HEADER 256u
#define SVC_REMOVED 56u /* offset of the removed word */
#define SVC_FLAGS 44u   /* offset of the flags word */
#define SVC_SINGLE_PRODUCER 1u
#define SVC_SLOT_HEADER 24u
#define SVC_FREE 0u
#define SVC_ABANDONED 0xFFFFFFFEu
#define SVC_COMMITTED 0xFFFFFFFFu
#define SVC_SEM_DATA 0
#define SVC_SEM_SPACE 1
#define SVC_SEM_PRODUCERS 2
#define SVC_SEM_CONSUMER 3
/* The adaptive spin before sleeping (as the Swift side's Spin): a state > 0 is the budget in
 * nanoseconds, doubled after a spin that found what it waited for, halved after one that did not;
 * below SVC_SPIN_MIN spinning stops for SVC_SPIN_OFF_WAITS waits (the state counts up from
 * -SVC_SPIN_OFF_WAITS), then state 0 probes once with SVC_SPIN_PROBE. */
#define SVC_SPIN_INITIAL 20000
#define SVC_SPIN_MIN 1000
#define SVC_SPIN_MAX 200000
#define SVC_SPIN_OFF_WAITS 16
#define SVC_SPIN_PROBE 4000
/* The longest sleep before looking at the ring again: a waker that dies between taking the
 * sleepers word and posting would otherwise leave a sleeper asleep for good. */
#define SVC_WAKER_SLICE 100000000

typedef struct {
  uint8_t *base;
  int shmid, semid;
  uint32_t capacity, max_message_size, stride;
  int shift; /* log2(capacity) when it is a power of two, else -1: masks instead of divisions */
  uint32_t pid;
  int producer, consumer; /* registered */
  uint32_t flags;         /* SVC_SINGLE_PRODUCER */
  uint64_t tail;          /* the single producer's cursor */
  uint64_t head;
  int64_t spin_producer, spin_consumer;
  int spins;
} svc_channel;

static inline int64_t svc__spin_budget(int64_t state) {
  return state > 0 ? state : state == 0 ? SVC_SPIN_PROBE : 0;
}
static inline int64_t svc__spin_next(int64_t state, int found) {
  if (found) {
    int64_t b = (state > SVC_SPIN_INITIAL / 2 ? state : SVC_SPIN_INITIAL / 2) * 2;
    return b > SVC_SPIN_MAX ? SVC_SPIN_MAX : b;
  }
  if (state < 0) return state + 1;
  return state / 2 < SVC_SPIN_MIN ? -SVC_SPIN_OFF_WAITS : state / 2;
}

static inline uint64_t *svc__u64(const svc_channel *c, size_t off) { return (uint64_t *)(c->base + off); }
static inline uint32_t *svc__u32(const svc_channel *c, size_t off) { return (uint32_t *)(c->base + off); }
static inline uint8_t *svc__slot(const svc_channel *c, uint64_t pos) {
  uint64_t index = c->shift >= 0 ? pos & (c->capacity - 1) : pos % c->capacity;
  return c->base + SVC_HEADER + (size_t)index * c->stride;
}
static inline uint32_t svc__lap(const svc_channel *c, uint64_t pos) {
  return (uint32_t)(c->shift >= 0 ? pos >> c->shift : pos / c->capacity);
}
static inline int64_t svc__now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
static inline void svc__pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* One semop with an optional deadline (< 0: none); EINTR retried. 0 or errno. */
static inline int svc__semop(int semid, int index, int delta, int flags, int64_t deadline) {
  struct sembuf op = {(unsigned short)index, (short)delta, (short)flags};
  for (;;) {
    int rc;
    if (deadline >= 0) {
      int64_t left = deadline - svc__now();
      if (left < 0) left = 0;
      struct timespec t = {left / 1000000000, left % 1000000000};
      rc = semtimedop(semid, &op, 1, &t);
    } else {
      rc = semop(semid, &op, 1);
    }
    if (rc == 0) return 0;
    if (errno != EINTR) return errno == EINVAL ? EIDRM : errno;
  }
}

/* Posts n wake-ups in one semop. n comes from the segment (untrusted): at most 32767 (SEMVMX). */
static inline void svc__post(const svc_channel *c, int index, uint32_t n) {
  if (n > 0) svc__semop(c->semid, index, (int)(n > 32767 ? 32767 : n), 0, -1);
}
static inline void svc__wake(const svc_channel *c, size_t word, int index) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (__atomic_load_n(svc__u32(c, word), __ATOMIC_RELAXED) == 0) return;
  uint32_t n = __atomic_exchange_n(svc__u32(c, word), 0, __ATOMIC_SEQ_CST);
  if (n) svc__post(c, index, n);
}
static inline void svc__withdraw(const svc_channel *c, size_t word) {
  for (int i = 0; i < 64; i++) {
    uint32_t n = __atomic_load_n(svc__u32(c, word), __ATOMIC_SEQ_CST);
    if (n == 0 || __atomic_compare_exchange_n(svc__u32(c, word), &n, n - 1, 0, __ATOMIC_SEQ_CST,
                                              __ATOMIC_SEQ_CST))
      return;
  }
}

/* Spinning is useless on one CPU; where both sides share one, the adaptive spin shrinks. */
static inline int svc__cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* This process's PID namespace (the inode of /proc/self/ns/pid), 0 where it cannot be read. */
static inline uint64_t svc__pid_namespace(void) {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Checks the header of an attached segment of `size` bytes and fills in the geometry. */
static inline int svc__adopt(svc_channel *c, uint8_t *base, size_t size) {
  if (size < SVC_HEADER) return EPROTO;
  uint64_t magic = __atomic_load_n((uint64_t *)base, __ATOMIC_ACQUIRE);
  if (magic == 0) return EAGAIN;
  if (magic != SVC_MAGIC) return EPROTO;
  uint32_t version, header, cap, max, stride;
  int32_t semid;
  uint64_t total;
  memcpy(&version, base + 8, 4);
  memcpy(&header, base + 12, 4);
  memcpy(&cap, base + 16, 4);
  memcpy(&max, base + 20, 4);
  memcpy(&stride, base + 24, 4);
  memcpy(&semid, base + 28, 4);
  memcpy(&total, base + 32, 8);
  if (version != SVC_VERSION || header != SVC_HEADER) return EPROTO;
  if (cap < 1 || cap > (1u << 24) || max < 1 || max > (1u << 30)) return EPROTO;
  if (stride != ((SVC_SLOT_HEADER + (uint64_t)max + 63) / 64 * 64)) return EPROTO;
  if (total != SVC_HEADER + (uint64_t)cap * stride || total > size || semid < 0) return EPROTO;
  uint64_t creator_ns, my_ns = svc__pid_namespace();
  memcpy(&creator_ns, base + 48, 8);
  if (creator_ns != 0 && my_ns != 0 && creator_ns != my_ns) return EXDEV;
  uint32_t flags;
  memcpy(&flags, base + SVC_FLAGS, 4);
  if (flags & ~SVC_SINGLE_PRODUCER) return EPROTO;
  memset(c, 0, sizeof *c);
  c->flags = flags;
  c->base = base;
  c->capacity = cap;
  c->shift = (cap & (cap - 1)) == 0 ? __builtin_ctz(cap) : -1;
  c->max_message_size = max;
  c->stride = stride;
  c->semid = semid;
  c->pid = (uint32_t)getpid();
  c->spins = svc__cpus() > 1;
  c->spin_producer = c->spin_consumer = SVC_SPIN_INITIAL;
  return 0;
}

/* The semaphore set the header names must be the channel's: 4 semaphores with the segment's key
 * and the segment's creator (uid and gid; the key alone tells nothing for IPC_PRIVATE) -- the set
 * is read from the segment, so it is untrusted: never semop on someone else's set. */
static inline int svc__check_set(int semid, const struct shmid_ds *ds) {
  struct semid_ds sds;
  union {
    int val;
    struct semid_ds *buf;
  } arg;
  arg.buf = &sds;
  if (semctl(semid, 0, IPC_STAT, arg) != 0) return errno == EINVAL ? EIDRM : errno;
  if (sds.sem_nsems != 4 || sds.sem_perm.__key != ds->shm_perm.__key) return EPROTO;
  if (sds.sem_perm.cuid != ds->shm_perm.cuid || sds.sem_perm.cgid != ds->shm_perm.cgid) return EPROTO;
  return 0;
}

/* Opens the channel whose segment is `shmid`, waiting up to 10 s for its header. */
static inline int svc_open(svc_channel *c, int shmid) {
  struct shmid_ds ds;
  if (shmctl(shmid, IPC_STAT, &ds) != 0) return errno;
  void *base = shmat(shmid, NULL, 0);
  if (base == (void *)-1) return errno;
  int64_t deadline = svc__now() + 10000000000ll;
  int rc;
  while ((rc = svc__adopt(c, (uint8_t *)base, ds.shm_segsz)) == EAGAIN && svc__now() < deadline) {
    struct timespec t = {0, 1000000};
    nanosleep(&t, NULL);
  }
  if (rc == 0) rc = svc__check_set(c->semid, &ds);
  if (rc != 0) {
    shmdt(base);
    return rc;
  }
  c->shmid = shmid;
  return 0;
}

/* Creates a channel at `key` (IPC_PRIVATE allowed) with `mode` and `flags` (0 or
 * SVC_SINGLE_PRODUCER). */
static inline int svc_create_flags(svc_channel *c, key_t key, uint32_t capacity, uint32_t max,
                                   int mode, uint32_t flags) {
  if (flags & ~SVC_SINGLE_PRODUCER) return EINVAL;
  if (capacity < 1 || capacity > (1u << 24) || max < 1 || max > (1u << 30)) return EINVAL;
  if (!(mode & 0200)) return EINVAL; /* every side writes into the segment */
  uint64_t stride = (SVC_SLOT_HEADER + (uint64_t)max + 63) / 64 * 64;
  uint64_t total = SVC_HEADER + capacity * stride;
  int shmid = shmget(key, total, IPC_CREAT | IPC_EXCL | (mode & 0777));
  if (shmid < 0) return errno;
  int semid = semget(key, 4, IPC_CREAT | IPC_EXCL | (mode & 0777));
  if (semid < 0) {
    int e = errno;
    shmctl(shmid, IPC_RMID, NULL);
    return e;
  }
  uint8_t *base = (uint8_t *)shmat(shmid, NULL, 0);
  if (base == (void *)-1) {
    int e = errno;
    shmctl(shmid, IPC_RMID, NULL);
    semctl(semid, 0, IPC_RMID);
    return e;
  }
  uint32_t v[6] = {SVC_VERSION, SVC_HEADER, capacity, max, (uint32_t)stride, (uint32_t)semid};
  memcpy(base + 8, v, sizeof v);
  memcpy(base + 32, &total, 8);
  uint64_t ns = svc__pid_namespace();
  memcpy(base + 48, &ns, 8);
  memcpy(base + SVC_FLAGS, &flags, 4);
  __atomic_store_n((uint64_t *)base, SVC_MAGIC, __ATOMIC_RELEASE);
  int rc = svc__adopt(c, base, total);
  c->shmid = shmid;
  return rc;
}

/* Creates a channel at `key` (IPC_PRIVATE allowed) with `mode`: many producers. */
static inline int svc_create(svc_channel *c, key_t key, uint32_t capacity, uint32_t max, int mode) {
  return svc_create_flags(c, key, capacity, max, mode, 0);
}

static inline void svc_close(svc_channel *c) {
  if (c->producer) svc__semop(c->semid, SVC_SEM_PRODUCERS, -1, SEM_UNDO | IPC_NOWAIT, -1);
  if (c->consumer) svc__semop(c->semid, SVC_SEM_CONSUMER, -1, SEM_UNDO | IPC_NOWAIT, -1);
  shmdt(c->base);
  c->base = NULL;
}

static inline void svc_remove(svc_channel *c) {
  __atomic_store_n(svc__u32(c, SVC_REMOVED), 1, __ATOMIC_SEQ_CST); /* attached handles stop using it */
  semctl(c->semid, 0, IPC_RMID);
  shmctl(c->shmid, IPC_RMID, NULL);
}

/* One claim attempt: 0 (claimed *pos), EAGAIN (full) or EPROTO. */
static inline int svc__claim(svc_channel *c, uint64_t *pos) {
  if (__atomic_load_n(svc__u32(c, SVC_REMOVED), __ATOMIC_RELAXED)) return EIDRM;
  uint64_t *tailp = svc__u64(c, 64);
  uint64_t tail = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
  for (int tries = 0; tries < (1 << 16); tries++) {
    uint32_t lap = svc__lap(c, tail);
    uint64_t *state = (uint64_t *)svc__slot(c, tail);
    uint64_t st = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    int32_t d = (int32_t)((uint32_t)(st >> 32) - lap);
    if (d == 0) {
      if ((uint32_t)st == SVC_FREE) {
        uint64_t expected = st;
        if (__atomic_compare_exchange_n(state, &expected, (uint64_t)lap << 32 | c->pid, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
          uint64_t t = tail;
          __atomic_compare_exchange_n(tailp, &t, tail + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
          *pos = tail;
          return 0;
        }
        continue;
      }
      uint64_t t = tail;
      __atomic_compare_exchange_n(tailp, &t, tail + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
      tail = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
    } else if (d == -1) {
      uint64_t now = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
      if (now == tail) return EAGAIN;
      tail = now;
    } else if (d > 0) {
      uint64_t now = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
      if (now != tail) {
        tail = now; /* a stale look at the tail */
      } else if (d == 1) {
        uint64_t t = tail;
        __atomic_compare_exchange_n(tailp, &t, tail + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        tail = __atomic_load_n(tailp, __ATOMIC_ACQUIRE);
      } else {
        return EPROTO;
      }
    } else {
      return EPROTO;
    }
  }
  return EPROTO;
}

/* The single producer's claim from its cursor, with no store: 0 (claimed *pos), EAGAIN (full),
 * EIDRM or EPROTO. */
static inline int svc__claim_single(svc_channel *c, uint64_t *pos) {
  if (__atomic_load_n(svc__u32(c, SVC_REMOVED), __ATOMIC_RELAXED)) return EIDRM;
  for (uint32_t i = 0; i <= c->capacity; i++) {
    uint32_t lap = svc__lap(c, c->tail);
    uint64_t st = __atomic_load_n((uint64_t *)svc__slot(c, c->tail), __ATOMIC_ACQUIRE);
    int32_t d = (int32_t)((uint32_t)(st >> 32) - lap);
    uint32_t code = (uint32_t)st;
    if (d == 0 && code == SVC_FREE) {
      *pos = c->tail;
      return 0;
    }
    if (d == -1) return EAGAIN;
    if (!((d == 0 && (code == SVC_COMMITTED || code == SVC_ABANDONED)) || (d == 1 && code == SVC_FREE)))
      return EPROTO;
    c->tail++; /* a stale cursor: that position was used already */
  }
  return EPROTO;
}

static inline int svc__claim_any(svc_channel *c, uint64_t *pos) {
  return (c->flags & SVC_SINGLE_PRODUCER) ? svc__claim_single(c, pos) : svc__claim(c, pos);
}

/* Semaphore `index` from 0 to 1 with SEM_UNDO in one semop (no wait: EBUSY when it is not 0):
 * the registration of the one consumer, and of a single producer. */
static inline int svc__register_alone(const svc_channel *c, unsigned short index) {
  struct sembuf ops[2] = {{index, 0, IPC_NOWAIT}, {index, 1, SEM_UNDO}};
  if (semop(c->semid, ops, 2) == 0) return 0;
  return errno == EAGAIN ? EBUSY : errno == EINVAL ? EIDRM : errno;
}

/* Registers this handle as a producer: +1 with SEM_UNDO; single producer: 0 -> 1 or EBUSY. */
static inline int svc__become_producer(svc_channel *c) {
  if (c->flags & SVC_SINGLE_PRODUCER) {
    int e = svc__register_alone(c, SVC_SEM_PRODUCERS);
    if (e) return e;
    c->tail = __atomic_load_n(svc__u64(c, 64), __ATOMIC_ACQUIRE);
  } else {
    int e = svc__semop(c->semid, SVC_SEM_PRODUCERS, 1, SEM_UNDO, -1);
    if (e) return e;
  }
  __atomic_fetch_add(svc__u32(c, 40), 1, __ATOMIC_SEQ_CST);
  c->producer = 1;
  return 0;
}

/* Reserves a slot for up to `len` bytes: *payload is where to write. timeout_ns < 0: none. */
static inline int svc_reserve(svc_channel *c, uint32_t len, int block, int64_t timeout_ns, uint64_t *pos,
                       void **payload) {
  if (len > c->max_message_size) return E2BIG;
  if (!c->producer) {
    int e = svc__become_producer(c);
    if (e) return e;
  }
  int rc = svc__claim_any(c, pos);
  if (rc == EAGAIN && block) {
    int64_t deadline = timeout_ns >= 0 ? svc__now() + timeout_ns : -1;
    if (c->spins) {
      int64_t budget = svc__spin_budget(c->spin_producer), end = svc__now() + budget;
      for (unsigned i = 1; budget > 0 && rc == EAGAIN; i++) {
        svc__pause();
        rc = svc__claim_any(c, pos);
        if ((i & 31) == 0 && svc__now() >= end) break;
      }
      c->spin_producer = svc__spin_next(c->spin_producer, rc == 0);
    }
    while (rc == EAGAIN) {
      __atomic_fetch_add(svc__u32(c, 132), 1, __ATOMIC_SEQ_CST);
      rc = svc__claim_any(c, pos);
      if (rc != EAGAIN) {
        svc__withdraw(c, 132);
        break;
      }
      int64_t slice = svc__now() + SVC_WAKER_SLICE;
      if (deadline >= 0 && deadline < slice) slice = deadline;
      int e = svc__semop(c->semid, SVC_SEM_SPACE, -1, 0, slice);
      if (e == EAGAIN) {
        svc__withdraw(c, 132);
        if (deadline >= 0 && svc__now() >= deadline) return EAGAIN;
      } else if (e) {
        return e;
      }
      rc = svc__claim_any(c, pos);
    }
  }
  if (rc == 0) *payload = svc__slot(c, *pos) + SVC_SLOT_HEADER;
  return rc;
}

/* Publishes the reserved message: 0, or EPROTO when the consumer reclaimed the slot (it took this
 * process for dead: another PID namespace?): the message is not sent, the slot is left alone. */
static inline int svc_commit(svc_channel *c, uint64_t pos, int64_t type, uint32_t len) {
  uint8_t *slot = svc__slot(c, pos);
  memcpy(slot + 8, &type, 8);
  memcpy(slot + 16, &len, 4);
  uint64_t committed = (uint64_t)svc__lap(c, pos) << 32 | SVC_COMMITTED;
  if (c->flags & SVC_SINGLE_PRODUCER) {
    __atomic_store_n((uint64_t *)slot, committed, __ATOMIC_RELEASE);
    __atomic_store_n(svc__u64(c, 64), pos + 1, __ATOMIC_RELAXED);
    c->tail = pos + 1;
  } else {
    uint64_t expected = (uint64_t)svc__lap(c, pos) << 32 | c->pid;
    if (!__atomic_compare_exchange_n((uint64_t *)slot, &expected, committed, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
      return EPROTO;
  }
  svc__wake(c, 128, SVC_SEM_DATA);
  return 0;
}

static inline void svc_abandon(svc_channel *c, uint64_t pos) {
  if (c->flags & SVC_SINGLE_PRODUCER) return; /* the slot stays free: the next claim takes it */
  __atomic_store_n((uint64_t *)svc__slot(c, pos), (uint64_t)svc__lap(c, pos) << 32 | SVC_ABANDONED,
                   __ATOMIC_RELEASE);
}

static inline int svc_send(svc_channel *c, const void *data, uint32_t len, int64_t type, int block,
                           int64_t timeout_ns) {
  if (type <= 0) return EINVAL;
  uint64_t pos;
  void *payload;
  int rc = svc_reserve(c, len, block, timeout_ns, &pos, &payload);
  if (rc) return rc;
  memcpy(payload, data, len);
  return svc_commit(c, pos, type, len);
}

/* Looks at the head: 0 with the length and type (message, still in place), EAGAIN (empty, or being written
 * by *writer), EPROTO (garbage; a bad committed slot is dropped). */
static inline int svc__poll(svc_channel *c, uint32_t *len, int64_t *type, uint32_t *writer) {
  *writer = 0;
  if (__atomic_load_n(svc__u32(c, SVC_REMOVED), __ATOMIC_RELAXED)) return EIDRM;
  for (uint32_t i = 0; i <= c->capacity; i++) {
    uint8_t *slot = svc__slot(c, c->head);
    uint32_t lap = svc__lap(c, c->head);
    uint64_t st = __atomic_load_n((uint64_t *)slot, __ATOMIC_ACQUIRE);
    if ((uint32_t)(st >> 32) != lap) {
      /* Garbage (the consumer freed this slot for this lap itself): drop it and go on. */
      uint64_t expected = st;
      if (__atomic_compare_exchange_n((uint64_t *)slot, &expected, (uint64_t)(lap + 1) << 32, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
      return EPROTO;
    }
    uint32_t code = (uint32_t)st;
    if (code == SVC_FREE) return EAGAIN;
    if (code == SVC_COMMITTED) {
      memcpy(len, slot + 16, 4);
      memcpy(type, slot + 8, 8);
      if (*len > c->max_message_size || *type <= 0) {
        __atomic_store_n((uint64_t *)slot, (uint64_t)(lap + 1) << 32, __ATOMIC_RELEASE);
        __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
        return EPROTO;
      }
      return 0;
    }
    if (code == SVC_ABANDONED) {
      __atomic_store_n((uint64_t *)slot, (uint64_t)(lap + 1) << 32, __ATOMIC_RELEASE);
      __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
      continue;
    }
    if (code <= 0x7FFFFFFFu) {
      *writer = code;
      return EAGAIN;
    }
    __atomic_store_n((uint64_t *)slot, (uint64_t)(lap + 1) << 32, __ATOMIC_RELEASE);
    __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
    return EPROTO;
  }
  return EAGAIN;
}

static inline int svc__become_consumer(svc_channel *c) {
  int e = svc__register_alone(c, SVC_SEM_CONSUMER);
  if (e) return e;
  c->consumer = 1;
  c->head = __atomic_load_n(svc__u64(c, 192), __ATOMIC_RELAXED);
  for (uint32_t i = 0; i < c->capacity; i++) {
    uint64_t st = __atomic_load_n((uint64_t *)svc__slot(c, c->head), __ATOMIC_ACQUIRE);
    if (st != (uint64_t)(svc__lap(c, c->head) + 1) << 32) break;
    c->head++;
  }
  return 0;
}

/* Waits for a message at the head (in place): 0 with the length and type, or an errno. */
static inline int svc_peek(svc_channel *c, int block, int64_t timeout_ns, uint32_t *len, int64_t *type) {
  if (!c->consumer) {
    int e = svc__become_consumer(c);
    if (e) return e;
  }
  uint32_t writer;
  int rc = svc__poll(c, len, type, &writer);
  if (rc != EAGAIN || !block) return rc;
  int64_t deadline = timeout_ns >= 0 ? svc__now() + timeout_ns : -1;
  if (c->spins) {
    int64_t budget = svc__spin_budget(c->spin_consumer), end = svc__now() + budget;
    for (unsigned i = 1; budget > 0 && rc == EAGAIN; i++) {
      svc__pause();
      rc = svc__poll(c, len, type, &writer);
      if ((i & 31) == 0 && svc__now() >= end) break;
    }
    c->spin_consumer = svc__spin_next(c->spin_consumer, rc == 0);
  }
  while (rc == EAGAIN) {
    __atomic_fetch_add(svc__u32(c, 128), 1, __ATOMIC_SEQ_CST);
    rc = svc__poll(c, len, type, &writer);
    if (rc != EAGAIN) {
      svc__withdraw(c, 128);
      break;
    }
    int64_t until = svc__now() + SVC_WAKER_SLICE;
    if (deadline >= 0 && deadline < until) until = deadline;
    if (writer) {
      if (kill((pid_t)writer, 0) != 0 && errno == ESRCH) {
        /* Its writer died before committing: skip the slot. */
        uint64_t *state = (uint64_t *)svc__slot(c, c->head);
        uint64_t expected = (uint64_t)svc__lap(c, c->head) << 32 | writer;
        if (__atomic_compare_exchange_n(state, &expected,
                                        (uint64_t)(svc__lap(c, c->head) + 1) << 32, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
          __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
        svc__withdraw(c, 128);
        rc = svc__poll(c, len, type, &writer);
        continue;
      }
      int64_t slice = svc__now() + 50000000;
      if (slice < until) until = slice;
    }
    int e = svc__semop(c->semid, SVC_SEM_DATA, -1, 0, until);
    if (e == EAGAIN) {
      svc__withdraw(c, 128);
      if (deadline >= 0 && svc__now() >= deadline) return EAGAIN;
    } else if (e) {
      return e;
    }
    rc = svc__poll(c, len, type, &writer);
  }
  return rc;
}

static inline const void *svc_payload(const svc_channel *c) {
  return svc__slot(c, c->head) + SVC_SLOT_HEADER;
}

/* Frees the message svc_peek returned. */
static inline void svc_release(svc_channel *c) {
  uint8_t *slot = svc__slot(c, c->head);
  __atomic_store_n((uint64_t *)slot, (uint64_t)(svc__lap(c, c->head) + 1) << 32, __ATOMIC_RELEASE);
  __atomic_store_n(svc__u64(c, 192), ++c->head, __ATOMIC_RELAXED);
  svc__wake(c, 132, SVC_SEM_SPACE);
}

/* Receives into `buf` of `cap` bytes. E2BIG leaves the message in place. */
static inline int svc_receive(svc_channel *c, void *buf, uint32_t cap, uint32_t *len, int64_t *type,
                              int block, int64_t timeout_ns) {
  int rc = svc_peek(c, block, timeout_ns, len, type);
  if (rc) return rc;
  if (*len > cap) return E2BIG;
  memcpy(buf, svc_payload(c), *len);
  svc_release(c);
  return 0;
}

#endif
