/* Mrs. Premise in C: creates a semaphore and a shared memory segment at KEY, writes the time,
 * and then, round by round, waits for Mrs. Conclusion's reply, checks that it is the MD5 of
 * what she wrote, and writes back its MD5. Interoperates with the Swift and Python versions.
 * Usage: premise [params.txt] */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"
#include "md5.h"

static const char *const NAME = "premise";

/* glibc leaves union semun to the caller. */
union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

/* One semaphore operation, retried after a signal unless the signal asks us to stop.
 * Returns 0, or -1 when interrupted or failed. */
static int semaphore(int sem_id, int delta) {
  while (change_semaphore(sem_id, delta) == -1) {
    if (errno == EINTR && !demo_interrupted) continue;
    if (errno != EINTR) say(NAME, "semop(%+d) failed: %s", delta, strerror(errno));
    return -1;
  }
  return 0;
}

/* Release, then acquire: gives Mrs. Conclusion her turn. */
static int turn(const struct params *p, int sem_id) {
  if (p->live_dangerously) return demo_interrupted ? -1 : 0;
  if (semaphore(sem_id, 1) != 0) return -1;
  return semaphore(sem_id, -1);
}

int main(int argc, char **argv) {
  struct params p;
  read_params(argc > 1 ? argv[1] : "params.txt", &p);
  say(NAME, "Oooo 'ello, I'm Mrs. Premise!");
  demo_catch_signals();

  /* The semaphore first, then the segment, both exclusively: as the Python premise does. */
  int sem_id = semget(p.key, 1, IPC_CREAT | IPC_EXCL | (p.permissions & 0777));
  if (sem_id == -1) {
    say(NAME, "Creating the semaphore failed: %s", strerror(errno));
    return 1;
  }
  /* A new semaphore's value is undefined by the standard: set 0 (Mrs. Premise holds it). */
  union semun zero = {.val = 0};
  semctl(sem_id, 0, SETVAL, zero);
  int shm_id = shmget(p.key, (size_t)p.shm_size, IPC_CREAT | IPC_EXCL | (p.permissions & 0777));
  if (shm_id == -1) {
    say(NAME, "Creating the shared memory failed: %s", strerror(errno));
    semctl(sem_id, 0, IPC_RMID);
    return 1;
  }
  char *address = shmat(shm_id, NULL, 0);
  if (address == (void *)-1) {
    say(NAME, "Attaching the shared memory failed: %s", strerror(errno));
    shmctl(shm_id, IPC_RMID, NULL);
    semctl(sem_id, 0, IPC_RMID);
    return 1;
  }
  size_t size = (size_t)p.shm_size;

  /* The first message: the time, as Python's time.asctime() writes it (no newline). */
  char last[1024], text[1024], expected[33];
  time_t now = time(NULL);
  struct tm local;
  localtime_r(&now, &local);
  strftime(last, sizeof last, "%a %b %e %H:%M:%S %Y", &local);
  snprintf(address, size, "%s", last);
  say(NAME, "wrote %s", last);

  int status = 0;
  for (int i = 0; i < p.iterations && !demo_interrupted; i++) {
    say(NAME, "iteration %d", i);
    if (turn(&p, sem_id) != 0) break;
    read_text(address, size, text, sizeof text);
    /* Nothing new: give Mrs. Conclusion another turn. */
    int stopped = 0;
    while (strcmp(text, last) == 0) {
      if (turn(&p, sem_id) != 0) {
        stopped = 1;
        break;
      }
      read_text(address, size, text, sizeof text);
    }
    if (stopped) break;
    say(NAME, "read %s", text);
    md5_hex((const unsigned char *)last, strlen(last), expected);
    if (strcmp(text, expected) != 0) {
      say(NAME, "Shared memory corruption after %d iterations: expected %s", i, expected);
      status = 1;
      break;
    }
    md5_hex((const unsigned char *)text, strlen(text), last);
    snprintf(address, size, "%s", last);
    say(NAME, "wrote %s", last);
  }

  if (!p.live_dangerously && !demo_interrupted) {
    /* Let Mrs. Conclusion finish: release, wait until she has detached (at most 5 s), and
     * take the semaphore back before removing it. */
    say(NAME, "Final release of the semaphore; waiting for Mrs. Conclusion to finish");
    semaphore(sem_id, 1);
    for (int waited = 0; waited < 500 && !demo_interrupted; waited++) {
      struct shmid_ds ds;
      if (shmctl(shm_id, IPC_STAT, &ds) == -1 || ds.shm_nattch <= 1) break;
      usleep(10000);
    }
    say(NAME, "Final acquisition of the semaphore");
    semaphore(sem_id, -1);
  }

  say(NAME, "Destroying semaphore and shared memory");
  shmdt(address);
  shmctl(shm_id, IPC_RMID, NULL);
  semctl(sem_id, 0, IPC_RMID);
  if (demo_interrupted) {
    say(NAME, "Interrupted: removed what I created");
    return 130;
  }
  return status;
}
