// sysvipc-channel-c: the C implementation of the channel (sysvipc_channel.h) as a program, the
// C peer of the interoperation tests. It prints `key=value` lines and `result=ok` (exit 0) or
// `result=error errno=N` (exit 1), as the Swift test helper does.
//   create CAPACITY MAXSIZE [single] creates a private channel (with the single-producer flag);
//                                    prints id= (the test removes it)
//   produce ID PRODUCER COUNT MAXSIZE [SEED]   sends the test messages (type PRODUCER + 1)
//   consume ID COUNT                 receives COUNT messages and checks them
//   remove ID                        removes the channel (segment and semaphore set)
//   open ID                          opens the channel and closes it again
//   probe ID                         the C side's regression checks on an empty channel the
//                                    test made; prints what each gave, then removes the channel
// Messages: bytes 0..<4 producer, 4..<8 sequence (little-endian), byte k >= 8 is
// (producer * 31 + sequence * 7 + k) mod 256; sizes and the FNV-1a checksum as the Swift
// helper's ChannelMessage.
#include "sysvipc_channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static uint32_t message_size(uint32_t producer, uint32_t sequence, uint32_t seed, uint32_t max) {
  uint32_t x = seed * 2654435761u ^ producer * 40503u ^ sequence * 2246822519u;
  x ^= x >> 15;
  x *= 2246822519u;
  x ^= x >> 13;
  return 8 + x % (max - 7);
}

static uint8_t message_byte(uint32_t producer, uint32_t sequence, uint32_t k) {
  return (uint8_t)(producer * 31 + sequence * 7 + k);
}

static uint64_t fnv1a(const uint8_t *p, uint32_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static int fail(int e) {
  printf("result=error errno=%d message=%s\n", e, strerror(e));
  return 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  // A load worker, as the Swift helper's: nice 10, to disturb the tests beside it little.
  setpriority(PRIO_PROCESS, 0, 10);
  if (argc < 2) return fail(EINVAL);
  svc_channel c;
  int rc;
  if (strcmp(argv[1], "create") == 0 && (argc == 4 || (argc == 5 && strcmp(argv[4], "single") == 0))) {
    rc = svc_create_flags(&c, IPC_PRIVATE, (uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]), 0600,
                          argc == 5 ? SVC_SINGLE_PRODUCER : 0);
    if (rc) return fail(rc);
    printf("id=%d\nsemid=%d\n", c.shmid, c.semid);
  } else if (strcmp(argv[1], "open") == 0 && argc == 3) {
    if ((rc = svc_open(&c, atoi(argv[2])))) return fail(rc);
    svc_close(&c);
  } else if (strcmp(argv[1], "remove") == 0 && argc == 3) {
    if ((rc = svc_open(&c, atoi(argv[2])))) return fail(rc);
    printf("semid=%d\n", c.semid);
    svc_remove(&c);
    svc_close(&c);
  } else if (strcmp(argv[1], "produce") == 0 && argc >= 6) {
    if ((rc = svc_open(&c, atoi(argv[2])))) return fail(rc);
    uint32_t producer = (uint32_t)atoi(argv[3]), count = (uint32_t)atoi(argv[4]);
    uint32_t max = (uint32_t)atoi(argv[5]), seed = argc > 6 ? (uint32_t)atoi(argv[6]) : 1;
    printf("ready=yes\n");
    uint64_t checksum = 0;
    for (uint32_t s = 0; s < count; s++) {
      uint32_t n = message_size(producer, s, seed, max);
      uint64_t pos;
      uint8_t *p;
      if ((rc = svc_reserve(&c, n, 1, -1, &pos, (void **)&p))) return fail(rc);
      memcpy(p, &producer, 4);
      memcpy(p + 4, &s, 4);
      for (uint32_t k = 8; k < n; k++) p[k] = message_byte(producer, s, k);
      checksum += fnv1a(p, n);
      if ((rc = svc_commit(&c, pos, producer + 1, n))) return fail(rc);
    }
    printf("sent=%u\nchecksum=%llu\n", count, (unsigned long long)checksum);
    svc_close(&c);
  } else if (strcmp(argv[1], "consume") == 0 && argc == 4) {
    if ((rc = svc_open(&c, atoi(argv[2])))) return fail(rc);
    uint32_t count = (uint32_t)atoi(argv[3]);
    uint8_t *buf = malloc(c.max_message_size);
    uint32_t next[64] = {0}, counts[64] = {0};
    uint64_t checksum = 0;
    unsigned corrupt = 0, disorder = 0;
    printf("ready=yes\n");
    for (uint32_t i = 0; i < count; i++) {
      uint32_t n;
      int64_t type;
      if ((rc = svc_receive(&c, buf, c.max_message_size, &n, &type, 1, 60000000000ll))) return fail(rc);
      checksum += fnv1a(buf, n);
      if (n < 8) {
        corrupt++;
        continue;
      }
      uint32_t producer, s;
      memcpy(&producer, buf, 4);
      memcpy(&s, buf + 4, 4);
      int intact = type == (int64_t)producer + 1;
      for (uint32_t k = 8; k < n && intact; k++) intact = buf[k] == message_byte(producer, s, k);
      if (!intact) corrupt++;
      if (producer < 64) {
        if (counts[producer] && next[producer] != s) disorder++;
        next[producer] = s + 1;
        counts[producer]++;
      }
    }
    printf("received=%u\nchecksum=%llu\ncorrupt=%u\ndisorder=%u\n", count,
           (unsigned long long)checksum, corrupt, disorder);
    for (int p = 0; p < 64; p++)
      if (counts[p]) printf("p%d=%u\n", p, counts[p]);
    free(buf);
    svc_close(&c);
  } else if (strcmp(argv[1], "probe") == 0 && argc == 3) {
    if ((rc = svc_open(&c, atoi(argv[2])))) return fail(rc);
    uint8_t byte = 7, out[8];
    uint32_t n;
    int64_t type;
    /* A commit after the consumer reclaimed the claim (as for a writer it took for dead). */
    uint64_t pos;
    void *p;
    if ((rc = svc_reserve(&c, 1, 0, -1, &pos, &p))) return fail(rc);
    __atomic_store_n((uint64_t *)svc__slot(&c, pos), (uint64_t)(svc__lap(&c, pos) + 1) << 32,
                     __ATOMIC_RELEASE);
    printf("reclaimed_commit=%d\n", svc_commit(&c, pos, 1, 1));
    printf("reclaimed_state_kept=%d\n", __atomic_load_n((uint64_t *)svc__slot(&c, pos),
                                                        __ATOMIC_ACQUIRE) ==
                                             (uint64_t)(svc__lap(&c, pos) + 1) << 32);
    c.head = pos + 1; /* the consumer moved past the slot it reclaimed */
    c.consumer = 0;
    /* Lap garbage at the head: dropped, and the channel goes on. */
    if ((rc = svc__become_consumer(&c))) return fail(rc);
    c.head = pos + 1;
    uint8_t *slot = svc__slot(&c, c.head);
    __atomic_store_n((uint64_t *)slot, 77ull << 32 | SVC_COMMITTED, __ATOMIC_RELEASE);
    printf("lap_garbage=%d\n", svc_receive(&c, out, 8, &n, &type, 0, -1));
    rc = svc_send(&c, &byte, 1, 1, 0, -1);
    if (rc == 0) rc = svc_receive(&c, out, 8, &n, &type, 0, -1);
    printf("after_lap_garbage=%d\n", rc == 0 && n == 1 && out[0] == 7 ? 0 : rc ? rc : -1);
    /* A sleepers word of 0xFFFFFFFF: one send posts once (the fastest of 10, in microseconds). */
    int64_t fastest = INT64_MAX;
    for (int i = 0; i < 10; i++) {
      __atomic_store_n(svc__u32(&c, 128), 0xFFFFFFFFu, __ATOMIC_SEQ_CST);
      int64_t start = svc__now();
      if ((rc = svc_send(&c, &byte, 1, 1, 0, -1))) return fail(rc);
      int64_t took = svc__now() - start;
      if (took < fastest) fastest = took;
      if ((rc = svc_receive(&c, out, 8, &n, &type, 0, -1))) return fail(rc);
      semctl(c.semid, SVC_SEM_DATA, SETVAL, 0);
    }
    printf("scribbled_sleepers_send_us=%lld\n", (long long)(fastest / 1000));
    /* Removed: a send no longer succeeds into the detached ring. */
    svc_remove(&c);
    printf("send_after_remove=%d\n", svc_send(&c, &byte, 1, 1, 0, -1));
    printf("receive_after_remove=%d\n", svc_receive(&c, out, 8, &n, &type, 0, -1));
    svc_close(&c);
  } else {
    return fail(EINVAL);
  }
  printf("result=ok\n");
  return 0;
}
