#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "CAllocCounter.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__GLIBC__)

// glibc's own allocator entry points, exported for exactly this use.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

static _Atomic uint64_t allocations, reallocations, frees, bytes;

static inline void count(_Atomic uint64_t *counter, size_t n) {
  atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
}

void *malloc(size_t n) {
  count(&allocations, n);
  return __libc_malloc(n);
}

void *calloc(size_t count_, size_t size) {
  count(&allocations, count_ * size);
  return __libc_calloc(count_, size);
}

void *realloc(void *p, size_t n) {
  count(p ? &reallocations : &allocations, n);
  return __libc_realloc(p, n);
}

void *memalign(size_t alignment, size_t n) {
  count(&allocations, n);
  return __libc_memalign(alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) {
  count(&allocations, n);
  return __libc_memalign(alignment, n);
}

int posix_memalign(void **out, size_t alignment, size_t n) {
  if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
  count(&allocations, n);
  void *p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *valloc(size_t n) {
  count(&allocations, n);
  return __libc_valloc(n);
}

void *pvalloc(size_t n) {
  count(&allocations, n);
  return __libc_pvalloc(n);
}

void free(void *p) {
  if (p) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  __libc_free(p);
}

alloc_counts alloc_counter_read(void) {
  alloc_counts c = {
      .allocations = atomic_load_explicit(&allocations, memory_order_relaxed),
      .reallocations = atomic_load_explicit(&reallocations, memory_order_relaxed),
      .frees = atomic_load_explicit(&frees, memory_order_relaxed),
      .bytes = atomic_load_explicit(&bytes, memory_order_relaxed),
  };
  return c;
}

int alloc_counter_active(void) {
  // The dynamic linker's malloc must be this file's, or calls from shared libraries (the Swift
  // runtime) would bypass the counter.
  void *resolved = dlsym(RTLD_DEFAULT, "malloc");
  return resolved == (void *)&malloc;
}

#else

alloc_counts alloc_counter_read(void) {
  alloc_counts c = {0, 0, 0, 0};
  return c;
}

int alloc_counter_active(void) { return 0; }

#endif
