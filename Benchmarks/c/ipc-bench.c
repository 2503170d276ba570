// ipc-bench.c: the C reference for the Swift benchmarks (Sources/ipc-bench): the same scenarios,
// options and output (impl=c), written as a C programmer would, straight on the system calls.
// Build: cc -O2 -o ipc-bench-c ipc-bench.c -lpthread   (run.py does it)
//
//   ipc-bench-c SCENARIO [--iterations N] [--pin same|split|none] [--size BYTES]
//                        [--api copy|zerocopy|alloc|buffer] [--kind sem|shm|mq|all] [--timeout SECONDS]
//
// Two-process scenarios re-execute this binary (posix_spawn of /proc/self/exe with
// `--child ROLE key=value...`). Every object is created with IPC_PRIVATE, its id passed to the
// child, and removed at the end, when the child fails, on SIGINT/SIGTERM/SIGHUP and on the
// timeout (SIGALRM).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The C implementation of SysVIPCChannel's message channel (issue 13).
#include "../../Sources/SysVIPCChannelC/sysvipc_channel.h"

extern char **environ;

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

// ---- Harness ---------------------------------------------------------------------------------

static void fail(const char *format, ...);

enum pin { PIN_NONE, PIN_SAME, PIN_SPLIT };
static const char *pin_names[] = {"none", "same", "split"};

struct options {
  const char *scenario;
  long iterations;  // 0: the scenario's default
  enum pin pin;
  long size;  // 0: the scenario's default
  const char *api;
  const char *kind;
  unsigned timeout;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long warm_up(long n) {
  long w = n / 10;
  if (w < 1) w = 1;
  return w < 1000 ? w : 1000;
}

// `scenario=... impl=c ops=... seconds=... ops_per_s=...`, then MB_per_s when bytes_per_op >= 0,
// rtt_us for round trips, then `extra` (already formatted "key=value ...").
static void report(const char *scenario, long ops, int64_t ns, long bytes_per_op, int round_trip,
                   const char *extra) {
  double seconds = (double)ns / 1e9;
  printf("scenario=%s impl=c ops=%ld seconds=%.6f ops_per_s=%.1f", scenario, ops, seconds,
         (double)ops / seconds);
  if (bytes_per_op >= 0) printf(" MB_per_s=%.1f", (double)ops * (double)bytes_per_op / seconds / 1e6);
  if (round_trip) printf(" rtt_us=%.3f", seconds / (double)ops * 1e6);
  if (extra && *extra) printf(" %s", extra);
  // Context switches (voluntary/involuntary) of this process and its reaped children: on one
  // CPU they, not the code, decide a two-process figure (see BENCHMARKS.md).
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  printf(" switches=%ld/%ld child_switches=%ld/%ld", self.ru_nvcsw, self.ru_nivcsw,
         children.ru_nvcsw, children.ru_nivcsw);
  printf("\n");
  fflush(stdout);
}

// The CPUs for parent and child (-1: not pinned), chosen before anything is pinned.
static void cpu_plan(enum pin pin, int *parent, int *child) {
  *parent = *child = -1;
  if (pin == PIN_NONE) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) fail("sched_getaffinity: %s", strerror(errno));
  int cpus[2], n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
    if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
  if (n < 1) fail("no CPU");
  if (pin == PIN_SAME) {
    *parent = *child = cpus[0];
    return;
  }
  if (n < 2) fail("--pin split needs two CPUs; this process has one");
  *parent = cpus[0];
  *child = cpus[1];
}

static void pin_self(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) fail("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

// Objects to remove, each once.
enum kind { KIND_SEM, KIND_SHM, KIND_MSG };
static struct {
  enum kind kind;
  int id;
} objects[16];
static int object_count;
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;

static void at_cleanup(enum kind kind, int id) {
  pthread_mutex_lock(&objects_lock);
  objects[object_count].kind = kind;
  objects[object_count].id = id;
  object_count++;
  pthread_mutex_unlock(&objects_lock);
}

static void clean_up(void) {
  pthread_mutex_lock(&objects_lock);
  for (int i = object_count - 1; i >= 0; i--) {
    switch (objects[i].kind) {
      case KIND_SEM: semctl(objects[i].id, 0, IPC_RMID); break;
      case KIND_SHM: shmctl(objects[i].id, IPC_RMID, NULL); break;
      case KIND_MSG: msgctl(objects[i].id, IPC_RMID, NULL); break;
    }
  }
  object_count = 0;
  pthread_mutex_unlock(&objects_lock);
}

static int is_child;

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "ipc-bench-c%s: ", is_child ? " (child)" : "");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\n");
  va_end(args);
  if (!is_child) clean_up();
  exit(1);
}

static volatile pid_t child_pid;
static volatile int child_status = -1;
static pthread_t watcher;

static sigset_t guarded_signals(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGALRM);
  return set;
}

static void *signal_guard(void *unused) {
  (void)unused;
  sigset_t set = guarded_signals();
  int sig = 0;
  sigwait(&set, &sig);
  clean_up();
  pid_t pid = __atomic_load_n(&child_pid, __ATOMIC_ACQUIRE);
  if (pid > 0) kill(pid, SIGKILL);
  fprintf(stderr, "ipc-bench-c: %s; objects removed\n", sig == SIGALRM ? "timed out" : "signal");
  _exit(2);
  return NULL;
}

// Blocks the guarded signals in every thread; one thread takes them, removes the objects and
// exits. SIGALRM is the overall timeout.
static void install_signal_guard(unsigned timeout) {
  sigset_t set = guarded_signals();
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t thread;
  if (pthread_create(&thread, NULL, signal_guard, NULL) != 0) fail("pthread_create");
  alarm(timeout);
}

static void *watch_child(void *unused) {
  (void)unused;
  int status = -1;
  pid_t pid = child_pid;
  while (waitpid(pid, &status, 0) == -1 && errno == EINTR) {
  }
  __atomic_store_n(&child_pid, 0, __ATOMIC_RELEASE);
  child_status = status;
  if (status != 0) {
    fprintf(stderr, "ipc-bench-c: child %d failed (wait status %d); removing objects\n", pid, status);
    clean_up();
  }
  return NULL;
}

// posix_spawn of this binary: `--child ROLE args...` (a NULL-terminated list), the guarded
// signals unblocked and at their defaults; a watcher thread reaps it.
static void spawn_child(const char *role, ...) {
  char *argv[16];
  int argc = 0;
  argv[argc++] = "ipc-bench-c";
  argv[argc++] = "--child";
  argv[argc++] = (char *)role;
  va_list args;
  va_start(args, role);
  for (char *arg; (arg = va_arg(args, char *)) != NULL && argc < 15;) argv[argc++] = arg;
  va_end(args);
  argv[argc] = NULL;

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t mask, defaults = guarded_signals();
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attributes, &mask);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", NULL, &attributes, argv, environ);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) fail("posix_spawn: %s", strerror(rc));
  child_pid = pid;
  if (pthread_create(&watcher, NULL, watch_child, NULL) != 0) fail("pthread_create");
}

static void join_child(void) {
  pthread_join(watcher, NULL);
  if (child_status != 0) fail("child failed (wait status %d)", child_status);
}

// A child's `key=value` argument.
static int child_argc;
static char **child_argv;

static long child_long(const char *key) {
  size_t length = strlen(key);
  for (int i = 0; i < child_argc; i++) {
    if (strncmp(child_argv[i], key, length) == 0 && child_argv[i][length] == '=')
      return strtol(child_argv[i] + length + 1, NULL, 10);
  }
  fail("missing %s=", key);
  return 0;
}

static void child_set_up(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pin_self((int)child_long("cpu"));
}

static char *format(const char *fmt, ...) {
  char *text;
  va_list args;
  va_start(args, fmt);
  if (vasprintf(&text, fmt, args) < 0) fail("vasprintf");
  va_end(args);
  return text;
}

// ---- The operations, each checked as a C programmer would ------------------------------------

static int new_semaphore(int value) {
  int id = semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) fail("semget: %s", strerror(errno));
  at_cleanup(KIND_SEM, id);
  union semun arg = {.val = value};
  if (value != 0 && semctl(id, 0, SETVAL, arg) < 0) fail("semctl(SETVAL): %s", strerror(errno));
  return id;
}

static inline void sem_change(int id, short delta) {
  struct sembuf op = {.sem_num = 0, .sem_op = delta, .sem_flg = 0};
  while (semop(id, &op, 1) != 0) {
    if (errno != EINTR) fail("semop: %s", strerror(errno));
  }
}

static int new_queue(void) {
  int id = msgget(IPC_PRIVATE, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) fail("msgget: %s", strerror(errno));
  at_cleanup(KIND_MSG, id);
  return id;
}

// struct msgbuf with room for the largest message of the scenarios.
struct message {
  long type;
  unsigned char text[65536];
};

static inline void queue_send(int id, struct message *m, size_t size) {
  while (msgsnd(id, m, size, 0) != 0) {
    if (errno != EINTR) fail("msgsnd: %s", strerror(errno));
  }
}

static inline size_t queue_receive(int id, struct message *m, size_t capacity, long type) {
  ssize_t n;
  while ((n = msgrcv(id, m, capacity, type, 0)) < 0) {
    if (errno != EINTR) fail("msgrcv: %s", strerror(errno));
  }
  return (size_t)n;
}

static int new_segment(size_t size, void **address) {
  int id = shmget(IPC_PRIVATE, size, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) fail("shmget: %s", strerror(errno));
  at_cleanup(KIND_SHM, id);
  void *p = shmat(id, NULL, 0);
  if (p == (void *)-1) fail("shmat: %s", strerror(errno));
  *address = p;
  return id;
}

// ---- Scenarios -------------------------------------------------------------------------------

static void sem_uncontended(struct options *o) {
  long n = o->iterations ? o->iterations : 200000;
  int cpu, unused;
  cpu_plan(o->pin, &cpu, &unused);
  pin_self(cpu);
  int sem = new_semaphore(1);
  for (long i = 0; i < warm_up(n); i++) {
    sem_change(sem, -1);
    sem_change(sem, 1);
  }
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    sem_change(sem, -1);
    sem_change(sem, 1);
  }
  int64_t elapsed = now_ns() - start;
  if (semctl(sem, 0, GETVAL) != 1) fail("sem_uncontended: value is not 1");
  clean_up();
  report("sem_uncontended", n, elapsed, -1, 0, format("pin=%s", pin_names[o->pin]));
}

static void sem_pingpong(struct options *o) {
  long n = o->iterations ? o->iterations : 50000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  int ping = new_semaphore(0), pong = new_semaphore(0);
  spawn_child("sem_pingpong", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("ping=%d", ping), format("pong=%d", pong), NULL);
  pin_self(parent_cpu);
  sem_change(pong, -1);  // the child is ready
  for (long i = 0; i < warm; i++) {
    sem_change(ping, 1);
    sem_change(pong, -1);
  }
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    sem_change(ping, 1);
    sem_change(pong, -1);
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  clean_up();
  report("sem_pingpong", n, elapsed, -1, 1, format("pin=%s", pin_names[o->pin]));
}

static void sem_pingpong_child(void) {
  child_set_up();
  int ping = (int)child_long("ping"), pong = (int)child_long("pong");
  long n = child_long("iterations");
  sem_change(pong, 1);
  for (long i = 0; i < n; i++) {
    sem_change(ping, -1);
    sem_change(pong, 1);
  }
}

// One sending child, the parent receiving: the clock runs over `n` receives after `warm`.
static void mq_throughput(struct options *o) {
  long size = o->size ? o->size : 64;
  if (size > 65536) fail("--size at most 65536");
  long n = o->iterations ? o->iterations : 100000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  int queue = new_queue();
  spawn_child("mq_throughput", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("queue=%d", queue), format("size=%ld", size), NULL);
  pin_self(parent_cpu);
  static struct message m;
  for (long i = 0; i < warm; i++) {
    if (queue_receive(queue, &m, sizeof m.text, 0) != (size_t)size) fail("mq_throughput: bad size");
  }
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    if (queue_receive(queue, &m, sizeof m.text, 0) != (size_t)size) fail("mq_throughput: bad size");
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  clean_up();
  report("mq_throughput", n, elapsed, size, 0,
         format("size=%ld pin=%s", size, pin_names[o->pin]));
}

static void mq_throughput_child(void) {
  child_set_up();
  int queue = (int)child_long("queue");
  long n = child_long("iterations"), size = child_long("size");
  static struct message m;
  m.type = 1;
  memset(m.text, 'x', (size_t)size);
  for (long i = 0; i < n; i++) queue_send(queue, &m, (size_t)size);
}

// Type-1 requests from the parent, type-2 replies from the child, on one queue.
static void mq_pingpong(struct options *o) {
  long size = o->size ? o->size : 64;
  if (size > 65536) fail("--size at most 65536");
  long n = o->iterations ? o->iterations : 50000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  int queue = new_queue();
  spawn_child("mq_pingpong", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("queue=%d", queue), format("size=%ld", size), NULL);
  pin_self(parent_cpu);
  static struct message request, reply;
  request.type = 1;
  memset(request.text, 'q', (size_t)size);
  for (long i = 0; i < warm; i++) {
    queue_send(queue, &request, (size_t)size);
    if (queue_receive(queue, &reply, sizeof reply.text, 2) != (size_t)size) fail("mq_pingpong: bad reply");
  }
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    queue_send(queue, &request, (size_t)size);
    if (queue_receive(queue, &reply, sizeof reply.text, 2) != (size_t)size) fail("mq_pingpong: bad reply");
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  clean_up();
  report("mq_pingpong", n, elapsed, -1, 1, format("size=%ld pin=%s", size, pin_names[o->pin]));
}

static void mq_pingpong_child(void) {
  child_set_up();
  int queue = (int)child_long("queue");
  long n = child_long("iterations");
  static struct message m;
  for (long i = 0; i < n; i++) {
    size_t size = queue_receive(queue, &m, sizeof m.text, 1);
    m.type = 2;
    queue_send(queue, &m, size);
  }
}

// mq_wake: the child sends a type-1 message holding the time of the send, 1 ms after the parent's
// last acknowledgement; the parent, blocked in msgrcv, takes the time as soon as it runs again
// and acknowledges with type 2. One op = one wake-up; time per op = mean send-to-resumption
// latency. (The Swift side waits in its async receive with --api async, the blocking one with
// --api blocking; C always blocks in msgrcv, and prints the api it was given, to pair the lines.)
static void mq_wake(struct options *o) {
  long size = o->size ? o->size : 64;
  if (size < 8) size = 8;
  if (size > 65536) fail("--size at most 65536");
  long n = o->iterations ? o->iterations : 300, warm = n / 10 < 1 ? 1 : (n / 10 > 50 ? 50 : n / 10);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  int queue = new_queue();
  spawn_child("mq_wake", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("queue=%d", queue), format("size=%ld", size), NULL);
  pin_self(parent_cpu);
  static struct message m, ack;
  ack.type = 2;
  int64_t sum = 0;
  for (long i = 0; i < warm + n; i++) {
    queue_receive(queue, &m, sizeof m.text, 1);
    int64_t now = now_ns(), sent;
    memcpy(&sent, m.text, sizeof sent);
    if (i >= warm) sum += now - sent;
    queue_send(queue, &ack, 1);
  }
  join_child();
  clean_up();
  const char *api = strcmp(o->api, "blocking") == 0   ? "blocking"
                    : strcmp(o->api, "executor") == 0 ? "executor"
                                                      : "async";
  report("mq_wake", n, sum, -1, 0, format("size=%ld api=%s pin=%s", size, api, pin_names[o->pin]));
}

static void mq_wake_child(void) {
  child_set_up();
  int queue = (int)child_long("queue");
  long n = child_long("iterations"), size = child_long("size");
  static struct message m, ack;
  m.type = 1;
  memset(m.text, 'w', (size_t)size);
  for (long i = 0; i < n; i++) {
    usleep(1000);
    int64_t now = now_ns();
    memcpy(m.text, &now, sizeof now);
    queue_send(queue, &m, (size_t)size);
    queue_receive(queue, &ack, sizeof ack.text, 2);
  }
}

// Iterations moving 8 GiB per run below 4 MiB (cache-resident, fast), 1 GiB above.
// One process: send, then receive it; the queue never blocks (for callgrind.sh, which follows
// no child). One op = one send + one receive.
static void mq_local(struct options *o) {
  long size = o->size ? o->size : 64;
  if (size > 65536) fail("--size at most 65536");
  long n = o->iterations ? o->iterations : 100000;
  int cpu, unused;
  cpu_plan(o->pin, &cpu, &unused);
  pin_self(cpu);
  int queue = new_queue();
  static struct message out, in;
  out.type = 1;
  memset(out.text, 'x', (size_t)size);
  int64_t start = 0;
  for (long i = -warm_up(n); i < n; i++) {
    if (i == 0) start = now_ns();
    queue_send(queue, &out, (size_t)size);
    if (queue_receive(queue, &in, sizeof in.text, 0) != (size_t)size) fail("mq_local: bad size");
  }
  int64_t elapsed = now_ns() - start;
  clean_up();
  // --api buffer: the Swift side uses MessageQueue.MessageBuffer; C always sends its own msgbuf.
  if (strcmp(o->api, "buffer") == 0)
    report("mq_local", n, elapsed, size, 0,
           format("size=%ld api=buffer pin=%s", size, pin_names[o->pin]));
  else
    report("mq_local", n, elapsed, size, 0, format("size=%ld pin=%s", size, pin_names[o->pin]));
}

static long shm_default_iterations(long size) {
  long n = (size < (4L << 20) ? (8L << 30) : (1L << 30)) / size;
  return n < 4 ? 4 : n;
}

// shm_write / shm_read: `size` bytes between a private buffer and the segment per op; in C both
// APIs are memcpy (the reference the Swift copying and zero-copy forms are held to).
// shm_read --api alloc: what a read that returns a new buffer costs in C (malloc, memcpy, free
// per op), the reference for Swift's read(count:offset:) -> [UInt8].
static void shm_copy(struct options *o, int write) {
  long size = o->size ? o->size : 4096;
  long n = o->iterations ? o->iterations : shm_default_iterations(size);
  int cpu, unused;
  cpu_plan(o->pin, &cpu, &unused);
  pin_self(cpu);
  void *segment;
  new_segment((size_t)size, &segment);
  unsigned char *buffer = malloc((size_t)size);
  memset(buffer, 'b', (size_t)size);
  memset(segment, 's', (size_t)size);
  for (long i = 0; i < warm_up(n); i++) {
    if (write) memcpy(segment, buffer, (size_t)size);
    else memcpy(buffer, segment, (size_t)size);
    __asm__ volatile("" ::: "memory");
  }
  int alloc = strcmp(o->api, "alloc") == 0;
  if (alloc && write) fail("--api alloc is for shm_read");
  int64_t start = now_ns();
  if (alloc) {
    long sink = 0;
    for (long i = 0; i < n; i++) {
      unsigned char *fresh = malloc((size_t)size);
      if (!fresh) fail("malloc");
      memcpy(fresh, segment, (size_t)size);
      __asm__ volatile("" ::"r"(fresh) : "memory");
      sink += fresh[size - 1];
      free(fresh);
    }
    buffer[size - 1] = (unsigned char)(sink / n);
  } else {
    for (long i = 0; i < n; i++) {
      if (write) memcpy(segment, buffer, (size_t)size);
      else memcpy(buffer, segment, (size_t)size);
      __asm__ volatile("" ::: "memory");
    }
  }
  int64_t elapsed = now_ns() - start;
  if (write ? ((unsigned char *)segment)[size - 1] != 'b' : buffer[size - 1] != 's')
    fail("shm: copy check failed");
  free(buffer);
  shmdt(segment);
  clean_up();
  report(write ? "shm_write" : "shm_read", n, elapsed, size, 0,
         format("size=%ld api=%s pin=%s", size, o->api, pin_names[o->pin]));
}

static void shm_write(struct options *o) { shm_copy(o, 1); }
static void shm_read(struct options *o) { shm_copy(o, 0); }

// Two processes each add 1 to a 64-bit counter in a segment `n` times under a semaphore; the
// final value must be 2n. One op = one locked increment. `gate` says ready, then done.
static void shm_counter(struct options *o) {
  long n = o->iterations ? o->iterations : 50000;
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  void *segment;
  int shm = new_segment(4096, &segment);
  volatile uint64_t *counter = segment;
  *counter = 0;
  int lock = new_semaphore(1), gate = new_semaphore(0);
  spawn_child("shm_counter", format("cpu=%d", child_cpu), format("iterations=%ld", n),
              format("shm=%d", shm), format("lock=%d", lock), format("gate=%d", gate), NULL);
  pin_self(parent_cpu);
  sem_change(gate, -1);  // ready
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    sem_change(lock, -1);
    *counter = *counter + 1;
    sem_change(lock, 1);
  }
  sem_change(gate, -1);  // done
  int64_t elapsed = now_ns() - start;
  join_child();
  uint64_t final = *counter;
  shmdt(segment);
  clean_up();
  if (final != (uint64_t)(2 * n)) fail("shm_counter: counter is %llu, not %ld", (unsigned long long)final, 2 * n);
  report("shm_counter", 2 * n, elapsed, -1, 0, format("pin=%s check=ok", pin_names[o->pin]));
}

static void shm_counter_child(void) {
  child_set_up();
  long n = child_long("iterations");
  int lock = (int)child_long("lock"), gate = (int)child_long("gate");
  volatile uint64_t *counter = shmat((int)child_long("shm"), NULL, 0);
  if (counter == (void *)-1) fail("shmat: %s", strerror(errno));
  sem_change(gate, 1);
  for (long i = 0; i < n; i++) {
    sem_change(lock, -1);
    *counter = *counter + 1;
    sem_change(lock, 1);
  }
  sem_change(gate, 1);
  shmdt((void *)counter);
}

// stat: what each Swift status() returns, read the way C would: a semaphore's IPC_STAT plus
// GETVAL, GETPID, GETNCNT, GETZCNT; one IPC_STAT for shared memory and for a queue.
static int64_t stat_sem(long n) {
  int sem = new_semaphore(1);
  long sink = 0;
  int64_t start = 0;
  for (long i = -warm_up(n); i < n; i++) {
    if (i == 0) start = now_ns();
    struct semid_ds ds;
    union semun arg = {.buf = &ds};
    if (semctl(sem, 0, IPC_STAT, arg) < 0) fail("semctl(IPC_STAT): %s", strerror(errno));
    int value = semctl(sem, 0, GETVAL), pid = semctl(sem, 0, GETPID);
    int ncnt = semctl(sem, 0, GETNCNT), zcnt = semctl(sem, 0, GETZCNT);
    if (value < 0 || pid < 0 || ncnt < 0 || zcnt < 0) fail("semctl: %s", strerror(errno));
    sink += value;
  }
  int64_t elapsed = now_ns() - start;
  if (sink != n + warm_up(n)) fail("stat sem: wrong values");
  clean_up();
  return elapsed;
}

static int64_t stat_shm(long n) {
  void *segment;
  int shm = new_segment(4096, &segment);
  long sink = 0;
  int64_t start = 0;
  for (long i = -warm_up(n); i < n; i++) {
    if (i == 0) start = now_ns();
    struct shmid_ds ds;
    if (shmctl(shm, IPC_STAT, &ds) < 0) fail("shmctl(IPC_STAT): %s", strerror(errno));
    sink += (long)ds.shm_nattch;
  }
  int64_t elapsed = now_ns() - start;
  if (sink != n + warm_up(n)) fail("stat shm: wrong values");
  shmdt(segment);
  clean_up();
  return elapsed;
}

static int64_t stat_mq(long n) {
  int queue = new_queue();
  long sink = 0;
  int64_t start = 0;
  for (long i = -warm_up(n); i < n; i++) {
    if (i == 0) start = now_ns();
    struct msqid_ds ds;
    if (msgctl(queue, IPC_STAT, &ds) < 0) fail("msgctl(IPC_STAT): %s", strerror(errno));
    sink += (long)ds.msg_qnum + 1;
  }
  int64_t elapsed = now_ns() - start;
  if (sink != n + warm_up(n)) fail("stat mq: wrong values");
  clean_up();
  return elapsed;
}

static void stat_scenario(struct options *o) {
  long n = o->iterations ? o->iterations : 100000;
  int cpu, unused;
  cpu_plan(o->pin, &cpu, &unused);
  pin_self(cpu);
  static const struct {
    const char *name;
    int64_t (*run)(long);
  } kinds[] = {{"sem", stat_sem}, {"shm", stat_shm}, {"mq", stat_mq}};
  int found = 0;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    if (strcmp(o->kind, "all") != 0 && strcmp(o->kind, kinds[k].name) != 0) continue;
    found = 1;
    int64_t elapsed = kinds[k].run(n);
    report("stat", n, elapsed, -1, 0, format("kind=%s pin=%s", kinds[k].name, pin_names[o->pin]));
  }
  if (!found) fail("stat: unknown --kind %s", o->kind);
}

// ---- The message channel (issue 13) ----------------------------------------------------------
// chan_throughput and chan_pingpong on sysvipc_channel.h, as the Swift side runs them on
// MessageChannel: 64 slots, the parent pinned before it creates the channel (spinning is decided
// from the CPUs a process may use when it opens a channel).

// --api single: a single-producer channel (SVC_SINGLE_PRODUCER).
static void new_channel(svc_channel *c, long size, int single) {
  int rc = svc_create_flags(c, IPC_PRIVATE, 64, (uint32_t)size, 0600, single ? SVC_SINGLE_PRODUCER : 0);
  if (rc) fail("svc_create: %s", strerror(rc));
  at_cleanup(KIND_SHM, c->shmid);
  at_cleanup(KIND_SEM, c->semid);
}

static void open_channel(svc_channel *c, int id) {
  int rc = svc_open(c, id);
  if (rc) fail("svc_open: %s", strerror(rc));
}

static void chan_throughput(struct options *o) {
  long size = o->size ? o->size : 64, n = o->iterations ? o->iterations : 1000000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  pin_self(parent_cpu);
  svc_channel c;
  int single = strcmp(o->api, "single") == 0;
  new_channel(&c, size, single);
  spawn_child("chan_throughput", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("channel=%d", c.shmid), format("size=%ld", size), NULL);
  unsigned char *buffer = malloc((size_t)size);
  uint32_t length;
  int64_t type;
  for (long i = 0; i < warm; i++) {
    int rc = svc_receive(&c, buffer, (uint32_t)size, &length, &type, 1, -1);
    if (rc || length != (uint32_t)size) fail("chan_throughput: %s", strerror(rc));
  }
  int64_t start = now_ns();
  for (long i = 0; i < n; i++) {
    int rc = svc_receive(&c, buffer, (uint32_t)size, &length, &type, 1, -1);
    if (rc || length != (uint32_t)size) fail("chan_throughput: %s", strerror(rc));
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  free(buffer);
  clean_up();
  report("chan_throughput", n, elapsed, size, 0,
         format("size=%ld pin=%s%s", size, pin_names[o->pin], single ? " api=single" : ""));
}

// chan_local: one process sends and receives on one channel (--api single: single producer);
// the code's own cost per message (for callgrind.sh). One op = one send + one receive.
static void chan_local(struct options *o) {
  long size = o->size ? o->size : 64, n = o->iterations ? o->iterations : 1000000;
  int cpu, unused;
  cpu_plan(o->pin, &cpu, &unused);
  pin_self(cpu);
  int single = strcmp(o->api, "single") == 0;
  svc_channel c;
  new_channel(&c, size, single);
  unsigned char *message = malloc((size_t)size), *into = malloc((size_t)size);
  memset(message, 'x', (size_t)size);
  uint32_t length;
  int64_t type, start = 0;
  for (long i = -warm_up(n); i < n; i++) {
    if (i == 0) start = now_ns();
    int rc = svc_send(&c, message, (uint32_t)size, 1, 1, -1);
    if (!rc) rc = svc_receive(&c, into, (uint32_t)size, &length, &type, 1, -1);
    if (rc || length != (uint32_t)size) fail("chan_local: %s", strerror(rc));
  }
  int64_t elapsed = now_ns() - start;
  free(message);
  free(into);
  clean_up();
  report("chan_local", n, elapsed, size, 0,
         format("size=%ld pin=%s%s", size, pin_names[o->pin], single ? " api=single" : ""));
}

static void chan_throughput_child(void) {
  child_set_up();
  long size = child_long("size"), n = child_long("iterations");
  svc_channel c;
  open_channel(&c, (int)child_long("channel"));
  unsigned char *message = malloc((size_t)size);
  memset(message, 'x', (size_t)size);
  for (long i = 0; i < n; i++) {
    int rc = svc_send(&c, message, (uint32_t)size, 1, 1, -1);
    if (rc) fail("chan_throughput child: %s", strerror(rc));
  }
  free(message);
  svc_close(&c);
}

static void chan_pingpong(struct options *o) {
  long size = o->size ? o->size : 64, n = o->iterations ? o->iterations : 200000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  pin_self(parent_cpu);
  svc_channel requests, replies;
  int single = strcmp(o->api, "single") == 0;
  new_channel(&requests, size, single);
  new_channel(&replies, size, single);
  spawn_child("chan_pingpong", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("requests=%d", requests.shmid), format("replies=%d", replies.shmid),
              format("size=%ld", size), NULL);
  unsigned char *request = malloc((size_t)size), *reply = malloc((size_t)size);
  memset(request, 'q', (size_t)size);
  uint32_t length;
  int64_t type;
  int64_t start = 0;
  for (long i = 0; i < warm + n; i++) {
    if (i == warm) start = now_ns();
    int rc = svc_send(&requests, request, (uint32_t)size, 1, 1, -1);
    if (!rc) rc = svc_receive(&replies, reply, (uint32_t)size, &length, &type, 1, -1);
    if (rc || length != (uint32_t)size) fail("chan_pingpong: %s", strerror(rc));
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  free(request);
  free(reply);
  clean_up();
  report("chan_pingpong", n, elapsed, -1, 1,
         format("size=%ld pin=%s%s", size, pin_names[o->pin], single ? " api=single" : ""));
}

static void chan_pingpong_child(void) {
  child_set_up();
  long size = child_long("size"), n = child_long("iterations");
  svc_channel requests, replies;
  open_channel(&requests, (int)child_long("requests"));
  open_channel(&replies, (int)child_long("replies"));
  unsigned char *buffer = malloc((size_t)size);
  uint32_t length;
  int64_t type;
  for (long i = 0; i < n; i++) {
    int rc = svc_receive(&requests, buffer, (uint32_t)size, &length, &type, 1, -1);
    if (!rc) rc = svc_send(&replies, buffer, length, 1, 1, -1);
    if (rc) fail("chan_pingpong child: %s", strerror(rc));
  }
  free(buffer);
  svc_close(&requests);
  svc_close(&replies);
}

// limit_pingpong: the floor for a round trip between two CPUs. One 64-bit word in shared memory:
// the parent stores 2i+1 and spins until it reads 2i+2; the child spins for 2i+1 and stores
// 2i+2. No message, no system call: two cache-line transfers per round trip. (Spinning yields
// the CPU now and then, so that --pin same finishes, slowly; the figure that matters is split.)
static inline void limit_wait(volatile uint64_t *word, uint64_t value) {
  for (unsigned spins = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) != value; spins++) {
    svc__pause();
    if ((spins & 4095) == 0) sched_yield();
  }
}

static void limit_pingpong(struct options *o) {
  long n = o->iterations ? o->iterations : 500000, warm = warm_up(n);
  int parent_cpu, child_cpu;
  cpu_plan(o->pin, &parent_cpu, &child_cpu);
  pin_self(parent_cpu);
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) fail("shmget: %s", strerror(errno));
  at_cleanup(KIND_SHM, id);
  volatile uint64_t *word = shmat(id, NULL, 0);
  if (word == (void *)-1) fail("shmat: %s", strerror(errno));
  spawn_child("limit_pingpong", format("cpu=%d", child_cpu), format("iterations=%ld", warm + n),
              format("shm=%d", id), NULL);
  int64_t start = 0;
  for (long i = 0; i < warm + n; i++) {
    if (i == warm) start = now_ns();
    __atomic_store_n(word, (uint64_t)(2 * i + 1), __ATOMIC_RELEASE);
    limit_wait(word, (uint64_t)(2 * i + 2));
  }
  int64_t elapsed = now_ns() - start;
  join_child();
  shmdt((void *)word);
  clean_up();
  report("limit_pingpong", n, elapsed, -1, 1, format("pin=%s", pin_names[o->pin]));
}

static void limit_pingpong_child(void) {
  child_set_up();
  long n = child_long("iterations");
  volatile uint64_t *word = shmat((int)child_long("shm"), NULL, 0);
  if (word == (void *)-1) fail("shmat: %s", strerror(errno));
  for (long i = 0; i < n; i++) {
    limit_wait(word, (uint64_t)(2 * i + 1));
    __atomic_store_n(word, (uint64_t)(2 * i + 2), __ATOMIC_RELEASE);
  }
}

// ---- main ------------------------------------------------------------------------------------

static const struct {
  const char *name;
  void (*run)(struct options *);
} scenarios[] = {
    {"sem_uncontended", sem_uncontended}, {"sem_pingpong", sem_pingpong},
    {"mq_throughput", mq_throughput},     {"mq_pingpong", mq_pingpong}, {"mq_wake", mq_wake},
    {"mq_local", mq_local},               {"chan_local", chan_local},
    {"shm_write", shm_write},             {"shm_read", shm_read},
    {"shm_counter", shm_counter},         {"stat", stat_scenario},
    {"chan_throughput", chan_throughput}, {"chan_pingpong", chan_pingpong},
    {"limit_pingpong", limit_pingpong},
};

static const struct {
  const char *name;
  void (*run)(void);
} child_roles[] = {
    {"sem_pingpong", sem_pingpong_child}, {"mq_throughput", mq_throughput_child},
    {"mq_pingpong", mq_pingpong_child},   {"shm_counter", shm_counter_child},
    {"mq_wake", mq_wake_child},
    {"chan_throughput", chan_throughput_child}, {"chan_pingpong", chan_pingpong_child},
    {"limit_pingpong", limit_pingpong_child},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
    is_child = 1;
    child_argc = argc - 3;
    child_argv = argv + 3;
    for (size_t i = 0; i < COUNT(child_roles); i++) {
      if (strcmp(argv[2], child_roles[i].name) == 0) {
        child_roles[i].run();
        return 0;
      }
    }
    fail("unknown child role %s", argv[2]);
  }
  if (argc == 2 && strcmp(argv[1], "list") == 0) {
    for (size_t i = 0; i < COUNT(scenarios); i++) printf("%s\n", scenarios[i].name);
    return 0;
  }
  if (argc < 2) fail("usage: ipc-bench-c SCENARIO [--iterations N] [--pin same|split|none] [--size N] [--api copy|zerocopy|alloc|buffer] [--kind K] [--timeout S]");
  struct options o = {.scenario = argv[1], .pin = PIN_NONE, .api = "copy", .kind = "all", .timeout = 600};
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) fail("%s needs a value", argv[i]);
    const char *flag = argv[i], *value = argv[i + 1];
    char *end;
    if (strcmp(flag, "--iterations") == 0) {
      o.iterations = strtol(value, &end, 10);
      if (*end || o.iterations <= 0) fail("bad --iterations %s", value);
    } else if (strcmp(flag, "--pin") == 0) {
      if (strcmp(value, "same") == 0) o.pin = PIN_SAME;
      else if (strcmp(value, "split") == 0) o.pin = PIN_SPLIT;
      else if (strcmp(value, "none") == 0) o.pin = PIN_NONE;
      else fail("bad --pin %s", value);
    } else if (strcmp(flag, "--size") == 0) {
      o.size = strtol(value, &end, 10);
      if (*end || o.size <= 0) fail("bad --size %s", value);
    } else if (strcmp(flag, "--api") == 0) {
      if (strcmp(value, "copy") != 0 && strcmp(value, "zerocopy") != 0 && strcmp(value, "alloc") != 0 &&
          strcmp(value, "buffer") != 0 && strcmp(value, "async") != 0 && strcmp(value, "blocking") != 0 &&
          strcmp(value, "executor") != 0 && strcmp(value, "single") != 0)
        fail("bad --api %s", value);
      o.api = value;
    } else if (strcmp(flag, "--kind") == 0) {
      o.kind = value;
    } else if (strcmp(flag, "--timeout") == 0) {
      o.timeout = (unsigned)strtoul(value, &end, 10);
      if (*end || o.timeout == 0) fail("bad --timeout %s", value);
    } else {
      fail("unknown option %s", flag);
    }
  }
  for (size_t i = 0; i < COUNT(scenarios); i++) {
    if (strcmp(o.scenario, scenarios[i].name) == 0) {
      install_signal_guard(o.timeout);
      scenarios[i].run(&o);
      clean_up();
      return 0;
    }
  }
  fail("unknown scenario %s", o.scenario);
  return 1;
}
