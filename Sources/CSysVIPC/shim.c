#if defined(__ANDROID__)
#error "SysVIPC does not support Android: Android does not support System V IPC, and its SELinux policy refuses semget, shmget and msgget to apps (see the PlatformNotes article)."
#endif

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "CSysVIPC.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

// The caller must define union semun (glibc does not; Darwin does unless strict POSIX).
#if defined(__linux__)
union csysvipc_semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
  struct seminfo *__buf;
};
#else
#define csysvipc_semun semun
#endif

_Static_assert(sizeof(csysvipc_sembuf) == sizeof(struct sembuf), "sembuf size");
_Static_assert(offsetof(csysvipc_sembuf, number) == offsetof(struct sembuf, sem_num), "sem_num");
_Static_assert(offsetof(csysvipc_sembuf, operation) == offsetof(struct sembuf, sem_op), "sem_op");
_Static_assert(offsetof(csysvipc_sembuf, flags) == offsetof(struct sembuf, sem_flg), "sem_flg");
_Static_assert(sizeof(key_t) == sizeof(int32_t), "key_t is 32 bits");
_Static_assert(sizeof(long) == 8 || sizeof(long) == 4, "C long");

int csysvipc_semtimedop(int id, csysvipc_sembuf *ops, size_t count, int64_t timeout_ns) {
#if defined(__linux__)
  struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000),
                        .tv_nsec = (long)(timeout_ns % 1000000000)};
  return semtimedop(id, (struct sembuf *)ops, count, &ts);
#else
  (void)id; (void)ops; (void)count; (void)timeout_ns;
  errno = ENOSYS;
  return -1;
#endif
}

int csysvipc_semop1(int id, int16_t operation, int16_t flags) {
  struct sembuf op = {.sem_num = 0, .sem_op = operation, .sem_flg = flags};
  return semop(id, &op, 1);
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread void *scratch_block;
static __thread int scratch_busy;

static void scratch_key_create(void) { pthread_key_create(&scratch_key, free); }

void *csysvipc_scratch_acquire(size_t size) {
  if (size <= CSYSVIPC_THREAD_SCRATCH && !scratch_busy) {
    if (!scratch_block) {
      pthread_once(&scratch_once, scratch_key_create);
      scratch_block = malloc(CSYSVIPC_THREAD_SCRATCH);
      if (!scratch_block) return NULL;
      // The key's destructor frees the block when the thread ends.
      pthread_setspecific(scratch_key, scratch_block);
    }
    scratch_busy = 1;
    return scratch_block;
  }
  return malloc(size ? size : 1);
}

void csysvipc_scratch_release(void *block) {
  if (block && block == scratch_block) {
    scratch_busy = 0;
  } else {
    free(block);
  }
}

int csysvipc_semctl_value(int id, int index, int command, int value) {
  union csysvipc_semun arg;
  arg.val = value;
  return semctl(id, index, command, arg);
}

int csysvipc_semctl_array(int id, int command, uint16_t *values) {
  union csysvipc_semun arg;
  arg.array = values;
  return semctl(id, 0, command, arg);
}

static void copy_perm(csysvipc_perm *out, const struct ipc_perm *in) {
#if defined(__linux__)
  out->key = (int32_t)in->__key;
#else
  out->key = (int32_t)in->_key;
#endif
  out->uid = (uint32_t)in->uid;
  out->gid = (uint32_t)in->gid;
  out->cuid = (uint32_t)in->cuid;
  out->cgid = (uint32_t)in->cgid;
  out->mode = (uint32_t)in->mode;
}

static void copy_sem(csysvipc_sem_status *out, const struct semid_ds *ds) {
  copy_perm(&out->perm, &ds->sem_perm);
  out->otime = (int64_t)ds->sem_otime;
  out->ctime = (int64_t)ds->sem_ctime;
  out->nsems = (uint64_t)ds->sem_nsems;
}

static void copy_shm(csysvipc_shm_status *out, const struct shmid_ds *ds) {
  copy_perm(&out->perm, &ds->shm_perm);
  out->size = (uint64_t)ds->shm_segsz;
  out->atime = (int64_t)ds->shm_atime;
  out->dtime = (int64_t)ds->shm_dtime;
  out->ctime = (int64_t)ds->shm_ctime;
  out->cpid = (int32_t)ds->shm_cpid;
  out->lpid = (int32_t)ds->shm_lpid;
  out->nattch = (uint64_t)ds->shm_nattch;
}

static void copy_msg(csysvipc_msg_status *out, const struct msqid_ds *ds) {
  copy_perm(&out->perm, &ds->msg_perm);
  out->stime = (int64_t)ds->msg_stime;
  out->rtime = (int64_t)ds->msg_rtime;
  out->ctime = (int64_t)ds->msg_ctime;
#if defined(__linux__)
  out->cbytes = (uint64_t)ds->__msg_cbytes;
#else
  out->cbytes = (uint64_t)ds->msg_cbytes;
#endif
  out->qnum = (uint64_t)ds->msg_qnum;
  out->qbytes = (uint64_t)ds->msg_qbytes;
  out->lspid = (int32_t)ds->msg_lspid;
  out->lrpid = (int32_t)ds->msg_lrpid;
}

int csysvipc_sem_stat(int id, csysvipc_sem_status *out) {
  struct semid_ds ds;
  union csysvipc_semun arg;
  arg.buf = &ds;
  int rc = semctl(id, 0, IPC_STAT, arg);
  if (rc == 0) copy_sem(out, &ds);
  return rc;
}

int csysvipc_sem_set(int id, uint32_t uid, uint32_t gid, uint32_t mode) {
  struct semid_ds ds;
  union csysvipc_semun arg;
  memset(&ds, 0, sizeof ds);
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return -1;
  ds.sem_perm.uid = (uid_t)uid;
  ds.sem_perm.gid = (gid_t)gid;
  ds.sem_perm.mode = (ds.sem_perm.mode & ~0777) | (mode & 0777);
  return semctl(id, 0, IPC_SET, arg);
}

int csysvipc_shm_stat(int id, csysvipc_shm_status *out) {
  struct shmid_ds ds;
  int rc = shmctl(id, IPC_STAT, &ds);
  if (rc == 0) copy_shm(out, &ds);
  return rc;
}

int csysvipc_shm_set(int id, uint32_t uid, uint32_t gid, uint32_t mode) {
  struct shmid_ds ds;
  memset(&ds, 0, sizeof ds);
  if (shmctl(id, IPC_STAT, &ds) != 0) return -1;
  ds.shm_perm.uid = (uid_t)uid;
  ds.shm_perm.gid = (gid_t)gid;
  ds.shm_perm.mode = (ds.shm_perm.mode & ~0777) | (mode & 0777);
  return shmctl(id, IPC_SET, &ds);
}

int csysvipc_msg_stat(int id, csysvipc_msg_status *out) {
  struct msqid_ds ds;
  int rc = msgctl(id, IPC_STAT, &ds);
  if (rc == 0) copy_msg(out, &ds);
  return rc;
}

int csysvipc_msg_set(int id, uint32_t uid, uint32_t gid, uint32_t mode, uint64_t qbytes) {
  struct msqid_ds ds;
  memset(&ds, 0, sizeof ds);
  if (msgctl(id, IPC_STAT, &ds) != 0) return -1;
  ds.msg_perm.uid = (uid_t)uid;
  ds.msg_perm.gid = (gid_t)gid;
  ds.msg_perm.mode = (ds.msg_perm.mode & ~0777) | (mode & 0777);
  ds.msg_qbytes = (msglen_t)qbytes;
  return msgctl(id, IPC_SET, &ds);
}

int csysvipc_limits_read(csysvipc_limits *out) {
  out->msgmax = out->msgmnb = out->msgmni = -1;
  out->semmsl = out->semmns = out->semopm = out->semmni = out->semvmx = -1;
  out->shmmax = out->shmall = out->shmmni = -1;
#if defined(__linux__)
  struct msginfo mi;
  struct seminfo si;
  struct shminfo shi;
  union csysvipc_semun arg;
  if (msgctl(0, IPC_INFO, (struct msqid_ds *)(void *)&mi) < 0) return -1;
  arg.__buf = &si;
  if (semctl(0, 0, IPC_INFO, arg) < 0) return -1;
  if (shmctl(0, IPC_INFO, (struct shmid_ds *)(void *)&shi) < 0) return -1;
  out->msgmax = mi.msgmax;
  out->msgmnb = mi.msgmnb;
  out->msgmni = mi.msgmni;
  out->semmsl = si.semmsl;
  out->semmns = si.semmns;
  out->semopm = si.semopm;
  out->semmni = si.semmni;
  out->semvmx = si.semvmx;
  out->shmmax = (int64_t)(shi.shmmax > INT64_MAX ? INT64_MAX : shi.shmmax);
  out->shmall = (int64_t)(shi.shmall > INT64_MAX ? INT64_MAX : shi.shmall);
  out->shmmni = (int64_t)shi.shmmni;
  return 0;
#elif defined(__APPLE__)
  struct { const char *name; int64_t *field; } table[] = {
      {"kern.sysv.msgmax", &out->msgmax}, {"kern.sysv.msgmnb", &out->msgmnb},
      {"kern.sysv.msgmni", &out->msgmni}, {"kern.sysv.semmsl", &out->semmsl},
      {"kern.sysv.semmns", &out->semmns}, {"kern.sysv.semopm", &out->semopm},
      {"kern.sysv.semmni", &out->semmni}, {"kern.sysv.semvmx", &out->semvmx},
      {"kern.sysv.shmmax", &out->shmmax}, {"kern.sysv.shmall", &out->shmall},
      {"kern.sysv.shmmni", &out->shmmni},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    int64_t v64 = 0;
    size_t len = sizeof v64;
    if (sysctlbyname(table[i].name, &v64, &len, NULL, 0) == 0) {
      *table[i].field = len == sizeof(int32_t) ? (int64_t)(*(int32_t *)&v64) : v64;
    }
  }
  if (out->semvmx < 0) out->semvmx = 32767;
  return 0;
#else
  errno = ENOSYS;
  return -1;
#endif
}

#if defined(__linux__)
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif

int csysvipc_sem_max_index(void) {
  struct seminfo si;
  union csysvipc_semun arg;
  arg.__buf = &si;
  return semctl(0, 0, SEM_INFO, arg);
}

int csysvipc_shm_max_index(void) {
  struct shm_info si;
  return shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&si);
}

int csysvipc_msg_max_index(void) {
  struct msginfo mi;
  return msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&mi);
}

// *_STAT_ANY (Linux 4.17) reads objects regardless of their read permission, as ipcs does;
// older kernels reject it with EINVAL and the plain *_STAT is used instead.
int csysvipc_sem_stat_index(int index, csysvipc_sem_status *out) {
  struct semid_ds ds;
  union csysvipc_semun arg;
  memset(&ds, 0, sizeof ds);
  arg.buf = &ds;
  int id = semctl(index, 0, SEM_STAT_ANY, arg);
  if (id < 0 && errno == EINVAL) id = semctl(index, 0, SEM_STAT, arg);
  if (id >= 0) copy_sem(out, &ds);
  return id;
}

int csysvipc_shm_stat_index(int index, csysvipc_shm_status *out) {
  struct shmid_ds ds;
  memset(&ds, 0, sizeof ds);
  int id = shmctl(index, SHM_STAT_ANY, &ds);
  if (id < 0 && errno == EINVAL) id = shmctl(index, SHM_STAT, &ds);
  if (id >= 0) copy_shm(out, &ds);
  return id;
}

int csysvipc_msg_stat_index(int index, csysvipc_msg_status *out) {
  struct msqid_ds ds;
  memset(&ds, 0, sizeof ds);
  int id = msgctl(index, MSG_STAT_ANY, &ds);
  if (id < 0 && errno == EINVAL) id = msgctl(index, MSG_STAT, &ds);
  if (id >= 0) copy_msg(out, &ds);
  return id;
}
#else
int csysvipc_sem_max_index(void) { errno = ENOSYS; return -1; }
int csysvipc_shm_max_index(void) { errno = ENOSYS; return -1; }
int csysvipc_msg_max_index(void) { errno = ENOSYS; return -1; }
int csysvipc_sem_stat_index(int index, csysvipc_sem_status *out) {
  (void)index; (void)out; errno = ENOSYS; return -1;
}
int csysvipc_shm_stat_index(int index, csysvipc_shm_status *out) {
  (void)index; (void)out; errno = ENOSYS; return -1;
}
int csysvipc_msg_stat_index(int index, csysvipc_msg_status *out) {
  (void)index; (void)out; errno = ENOSYS; return -1;
}
#endif

int csysvipc_msg_except(void) {
#if defined(__linux__)
  return MSG_EXCEPT;
#else
  return 0;
#endif
}
