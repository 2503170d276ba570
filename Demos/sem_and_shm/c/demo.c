#define _GNU_SOURCE
#include "demo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/time.h>

volatile sig_atomic_t demo_interrupted = 0;

static void on_signal(int number) {
  (void)number;
  demo_interrupted = 1;
}

/* Without SA_RESTART a blocked semop returns EINTR, so the main loop sees the flag. */
void demo_catch_signals(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGHUP, &action, NULL);
}

static int parse(const char *name, const char *text, int base, int *out) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, base);
  while (end && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
  if (errno || end == text || *end != '\0' || value < -2147483648L || value > 2147483647L) {
    fprintf(stderr, "params.txt: %s=%s is not a number\n", name, text);
    exit(2);
  }
  *out = (int)value;
  return 0;
}

void read_params(const char *path, struct params *params) {
  FILE *file = fopen(path, "r");
  if (!file) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    exit(2);
  }
  params->iterations = 1000;
  params->live_dangerously = 0;
  params->key = 42;
  params->permissions = 0600;
  params->shm_size = 4096;
  char line[1024];
  while (fgets(line, sizeof line, file)) {
    char *text = line;
    while (*text == ' ' || *text == '\t') text++;
    if (*text == '#' || *text == '\n' || *text == '\r' || *text == '\0') continue;
    char *equals = strchr(text, '=');
    if (!equals) {
      fprintf(stderr, "%s: not NAME=value: %s", path, line);
      exit(2);
    }
    *equals = '\0';
    char *end = equals;
    while (end > text && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
    char *value = equals + 1;
    while (*value == ' ' || *value == '\t') value++;
    if (!strcasecmp(text, "ITERATIONS")) parse(text, value, 10, &params->iterations);
    else if (!strcasecmp(text, "LIVE_DANGEROUSLY")) parse(text, value, 10, &params->live_dangerously);
    else if (!strcasecmp(text, "KEY")) parse(text, value, 10, &params->key);
    else if (!strcasecmp(text, "PERMISSIONS")) parse(text, value, 8, &params->permissions);
    else if (!strcasecmp(text, "SHM_SIZE")) parse(text, value, 10, &params->shm_size);
  }
  fclose(file);
}

void say(const char *name, const char *format, ...) {
  struct timeval now;
  gettimeofday(&now, NULL);
  printf("%s@%ld.%06ld: ", name, (long)now.tv_sec, (long)now.tv_usec);
  va_list arguments;
  va_start(arguments, format);
  vprintf(format, arguments);
  va_end(arguments);
  printf("\n");
  fflush(stdout);
}

int change_semaphore(int sem_id, int delta) {
  struct sembuf op;
  op.sem_num = 0;
  op.sem_op = (short)delta;
  op.sem_flg = 0;
  return semop(sem_id, &op, 1);
}

void read_text(const void *address, size_t segment_size, char *out, size_t size) {
  const char *text = address;
  size_t length = strnlen(text, segment_size);
  if (length > size - 1) length = size - 1;
  memcpy(out, text, length);
  out[length] = '\0';
}
