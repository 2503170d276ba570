// The C side of SysVIPC: thin, prefixed wrappers over the System V calls that Swift cannot make
// directly (the variadic semctl; semtimedop, hidden without _GNU_SOURCE; the IPC_INFO structures)
// and fixed-layout copies of the kernel's control structures, so the Swift side never depends on
// the C library's private field names. Every function returns what the system call returned and
// leaves errno as the call set it.
#ifndef CSYSVIPC_H
#define CSYSVIPC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One semop operation: `struct sembuf` with a layout checked against the system's.
typedef struct {
  uint16_t number;
  int16_t operation;
  int16_t flags;
} csysvipc_sembuf;

/// The parts of `struct ipc_perm` every object kind shares.
typedef struct {
  int32_t key;
  uint32_t uid;
  uint32_t gid;
  uint32_t cuid;
  uint32_t cgid;
  uint32_t mode;
} csysvipc_perm;

/// `struct semid_ds`, flattened. Times are seconds since the epoch, 0 meaning never.
typedef struct {
  csysvipc_perm perm;
  int64_t otime;
  int64_t ctime;
  uint64_t nsems;
} csysvipc_sem_status;

/// `struct shmid_ds`, flattened.
typedef struct {
  csysvipc_perm perm;
  uint64_t size;
  int64_t atime;
  int64_t dtime;
  int64_t ctime;
  int32_t cpid;
  int32_t lpid;
  uint64_t nattch;
} csysvipc_shm_status;

/// `struct msqid_ds`, flattened.
typedef struct {
  csysvipc_perm perm;
  int64_t stime;
  int64_t rtime;
  int64_t ctime;
  uint64_t cbytes;
  uint64_t qnum;
  uint64_t qbytes;
  int32_t lspid;
  int32_t lrpid;
} csysvipc_msg_status;

/// The kernel's limits, from IPC_INFO (Linux) or sysctl (elsewhere); -1 where unknown.
typedef struct {
  int64_t msgmax, msgmnb, msgmni;
  int64_t semmsl, semmns, semopm, semmni, semvmx;
  int64_t shmmax, shmall, shmmni;
} csysvipc_limits;

/// Whether semtimedop exists on this platform (Linux: yes; macOS: no).
int csysvipc_has_semtimedop(void);

/// semop, or semtimedop when `timeout_ns` >= 0 (a relative timeout in nanoseconds).
/// Without semtimedop a timeout is refused with ENOSYS: the Swift side emulates it.
int csysvipc_semop(int id, csysvipc_sembuf *ops, size_t count, int64_t timeout_ns);

/// semop of one operation on semaphore 0, without a timeout: the hot path of acquire and
/// release, with the `struct sembuf` built here so that the Swift caller needs no stack buffer.
int csysvipc_semop1(int id, int16_t operation, int16_t flags);

int csysvipc_sem_getval(int id, int index);
int csysvipc_sem_setval(int id, int index, int value);
int csysvipc_sem_getall(int id, uint16_t *values);
int csysvipc_sem_setall(int id, const uint16_t *values);
int csysvipc_sem_getpid(int id, int index);
int csysvipc_sem_getncnt(int id, int index);
int csysvipc_sem_getzcnt(int id, int index);
int csysvipc_sem_stat(int id, csysvipc_sem_status *out);
int csysvipc_sem_set(int id, uint32_t uid, uint32_t gid, uint32_t mode);
int csysvipc_sem_remove(int id);

int csysvipc_shm_stat(int id, csysvipc_shm_status *out);
int csysvipc_shm_set(int id, uint32_t uid, uint32_t gid, uint32_t mode);
int csysvipc_shm_remove(int id);

int csysvipc_msg_stat(int id, csysvipc_msg_status *out);
int csysvipc_msg_set(int id, uint32_t uid, uint32_t gid, uint32_t mode, uint64_t qbytes);
int csysvipc_msg_remove(int id);

/// The byte offset of the text in `struct msgbuf` (the size of the C `long` type before it).
size_t csysvipc_msg_header_size(void);

/// msgsnd of `size` text bytes at `message`, where `message` points to the type (a C long).
int csysvipc_msgsnd(int id, const void *message, size_t size, int flags);
/// The size of each thread's message scratch block: a message of Linux's default msgmax
/// (8192 bytes) with its type, and a type's worth more.
enum { CSYSVIPC_THREAD_SCRATCH = 8192 + 2 * 8 };

/// A block of `size` uninitialised bytes aligned for a C long, for one message: this thread's
/// own block (allocated once per thread, freed when the thread ends) when `size` fits and it is
/// not in use, else a new heap block; NULL when that allocation fails. Give it back with
/// csysvipc_scratch_release. Swift's temporary allocation uses the heap above 1 KiB, and an
/// InlineArray would be zeroed first.
void *csysvipc_scratch_acquire(size_t size);
void csysvipc_scratch_release(void *block);

/// msgrcv into `message` (type, then up to `size` text bytes); returns the text's length.
long csysvipc_msgrcv(int id, void *message, size_t size, long type, int flags);

/// Fills `out` with the kernel's limits. Returns 0, or -1 with errno.
int csysvipc_limits_read(csysvipc_limits *out);

/// Listing (Linux): the highest index in use for a kind, or -1 with errno.
int csysvipc_sem_max_index(void);
int csysvipc_shm_max_index(void);
int csysvipc_msg_max_index(void);
/// The object at `index` (SEM_STAT_ANY or SEM_STAT): returns its id, or -1 with errno.
int csysvipc_sem_stat_index(int index, csysvipc_sem_status *out);
int csysvipc_shm_stat_index(int index, csysvipc_shm_status *out);
int csysvipc_msg_stat_index(int index, csysvipc_msg_status *out);

/// Monotonic clock, nanoseconds.
int64_t csysvipc_monotonic_ns(void);

/// Flag values the Swift side needs that are macros or Linux-only.
int csysvipc_ipc_nowait(void);
int csysvipc_sem_undo(void);
int csysvipc_msg_noerror(void);
int csysvipc_msg_except(void);
int csysvipc_shm_hugetlb(void);
int csysvipc_shm_noreserve(void);
int csysvipc_shm_rdonly(void);
int csysvipc_shm_rnd(void);
int csysvipc_shm_remap(void);
int csysvipc_shm_dest(void);

#ifdef __cplusplus
}
#endif

#endif
