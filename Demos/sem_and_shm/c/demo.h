/* What premise.c and conclusion.c share: params.txt, the log lines, the semaphore calls and
 * the text in the segment. */
#ifndef DEMO_H
#define DEMO_H

#include <signal.h>
#include <stddef.h>

struct params {
  int iterations;
  int live_dangerously;
  int key;
  int permissions;
  int shm_size;
};

/* Reads NAME=value lines from `path` ('#' starts a comment): ITERATIONS, LIVE_DANGEROUSLY,
 * KEY (decimal), PERMISSIONS (octal), SHM_SIZE. Exits with a message when the file is missing
 * or a value is malformed. */
void read_params(const char *path, struct params *params);

/* Prints "name@seconds.micro: message", as the Python demo's utils.say does. */
void say(const char *name, const char *format, ...);

/* semop of +1 or -1 on semaphore 0. Returns 0, or -1 with errno (EINTR when a signal
 * arrived, EIDRM when the semaphore was removed). */
int change_semaphore(int sem_id, int delta);

/* Copies the NUL-terminated text at the start of the segment (at most size - 1 bytes) into
 * `out`, which holds `size` bytes. */
void read_text(const void *address, size_t segment_size, char *out, size_t size);

/* Set by SIGINT/SIGTERM/SIGHUP: the premise stops and removes what it created. */
extern volatile sig_atomic_t demo_interrupted;
void demo_catch_signals(void);

#endif
