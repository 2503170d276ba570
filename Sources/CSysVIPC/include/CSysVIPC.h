// The C side of SysVIPC: only what Swift cannot do itself. That is the variadic semctl with its
// union semun; what glibc hides without _GNU_SOURCE (semtimedop, MSG_EXCEPT, IPC_INFO and the
// *_INFO / *_STAT_ANY listing commands with their structures); the control structures, whose
// field names differ between platforms (`__key` or `_key`, `__msg_cbytes` or `msg_cbytes`),
// flattened into fixed layouts; and a per-thread scratch block (thread-local storage with a
// destructor). Everything else, constants included, is read in Swift (Core/Syscalls.swift, the
// one place that calls into this module). Every function returns what the system call returned
// and leaves errno as the call set it.
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

/// semtimedop with a relative timeout in nanoseconds (hidden without _GNU_SOURCE). Where there
/// is none (macOS) it fails with ENOSYS: the Swift side emulates timeouts there.
int csysvipc_semtimedop(int id, csysvipc_sembuf *ops, size_t count, int64_t timeout_ns);

/// semop of one operation on semaphore 0: the hot path of acquire and release. In C because
/// Swift guards any function that passes a local's address with a stack-protector check (five
/// more instructions per call, measured with Benchmarks/callgrind.sh).
int csysvipc_semop1(int id, int16_t operation, int16_t flags);

/// semctl of a command that takes an int or nothing (GETVAL, SETVAL, GETPID, GETNCNT, GETZCNT,
/// IPC_RMID): the variadic call with `union semun`.
int csysvipc_semctl_value(int id, int index, int command, int value);
/// semctl of a command that takes an array (GETALL, SETALL).
int csysvipc_semctl_array(int id, int command, uint16_t *values);

int csysvipc_sem_stat(int id, csysvipc_sem_status *out);
int csysvipc_sem_set(int id, uint32_t uid, uint32_t gid, uint32_t mode);
int csysvipc_shm_stat(int id, csysvipc_shm_status *out);
int csysvipc_shm_set(int id, uint32_t uid, uint32_t gid, uint32_t mode);
int csysvipc_msg_stat(int id, csysvipc_msg_status *out);
int csysvipc_msg_set(int id, uint32_t uid, uint32_t gid, uint32_t mode, uint64_t qbytes);

/// MSG_EXCEPT (Linux; hidden without _GNU_SOURCE), or 0 where there is none. Read once.
int csysvipc_msg_except(void);

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

#ifdef __cplusplus
}
#endif

#endif
