// Counts heap allocations: this target defines malloc, calloc, realloc, posix_memalign,
// aligned_alloc, memalign, valloc, pvalloc and free, forwards them to glibc's __libc_* entry
// points and counts each call with relaxed atomics. Linked into an executable, its definitions
// interpose on the C library's for every caller in the process (the Swift runtime included).
#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H

#include <stdint.h>

typedef struct {
  /// malloc, calloc, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, realloc(NULL, n).
  uint64_t allocations;
  /// realloc of an existing block (counted apart: it may or may not move).
  uint64_t reallocations;
  /// free of a non-null pointer.
  uint64_t frees;
  /// Bytes asked for by the allocations and reallocations.
  uint64_t bytes;
} alloc_counts;

/// The counts so far (process-wide).
alloc_counts alloc_counter_read(void);

/// Whether the interposed functions are the ones in use (a malloc through the dynamic linker's
/// lookup reaches this file's definition).
int alloc_counter_active(void);

#endif
