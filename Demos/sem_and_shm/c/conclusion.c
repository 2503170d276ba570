/* Mrs. Conclusion in C: opens the semaphore and the segment Mrs. Premise created at KEY and,
 * round by round, waits for something new, checks that it is the MD5 of what she wrote last
 * (the first message, the time, cannot be checked) and writes back its MD5.
 * Usage: conclusion [params.txt] */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include "demo.h"
#include "md5.h"

static const char *const NAME = "conclusion";

static int semaphore(int sem_id, int delta) {
  while (change_semaphore(sem_id, delta) == -1) {
    if (errno == EINTR) continue;
    say(NAME, "semop(%+d) failed: %s", delta, strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct params p;
  read_params(argc > 1 ? argv[1] : "params.txt", &p);
  say(NAME, "Oooo 'ello, I'm Mrs. Conclusion!");

  /* Mrs. Premise created both; open them by key. */
  int sem_id = semget(p.key, 0, 0600);
  if (sem_id == -1) {
    say(NAME, "Opening the semaphore failed: %s", strerror(errno));
    return 1;
  }
  int shm_id = shmget(p.key, 0, 0600);
  if (shm_id == -1) {
    say(NAME, "Opening the shared memory failed: %s", strerror(errno));
    return 1;
  }
  char *address = shmat(shm_id, NULL, 0);
  if (address == (void *)-1) {
    say(NAME, "Attaching the shared memory failed: %s", strerror(errno));
    return 1;
  }
  struct shmid_ds ds;
  shmctl(shm_id, IPC_STAT, &ds);
  size_t size = ds.shm_segsz;

  char last[1024] = "", text[1024], expected[33];
  int status = 0;
  for (int i = 0; i < p.iterations; i++) {
    say(NAME, "iteration %d", i);
    if (!p.live_dangerously && semaphore(sem_id, -1) != 0) {
      status = 1;
      break;
    }
    read_text(address, size, text, sizeof text);
    int failed = 0;
    while (strcmp(text, last) == 0) {
      /* Nothing new: give Mrs. Premise another turn. */
      if (!p.live_dangerously && (semaphore(sem_id, 1) != 0 || semaphore(sem_id, -1) != 0)) {
        failed = 1;
        break;
      }
      read_text(address, size, text, sizeof text);
    }
    if (failed) {
      status = 1;
      break;
    }
    say(NAME, "read %s", text);
    if (last[0] != '\0') {
      md5_hex((const unsigned char *)last, strlen(last), expected);
      if (strcmp(text, expected) != 0) {
        say(NAME, "Shared memory corruption after %d iterations: expected %s", i, expected);
        if (!p.live_dangerously) semaphore(sem_id, 1);
        status = 1;
        break;
      }
    }
    md5_hex((const unsigned char *)text, strlen(text), last);
    snprintf(address, size, "%s", last);
    say(NAME, "wrote %s", last);
    if (!p.live_dangerously && semaphore(sem_id, 1) != 0) {
      status = 1;
      break;
    }
  }
  shmdt(address);
  return status;
}
