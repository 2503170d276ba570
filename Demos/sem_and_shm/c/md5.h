/* MD5 (RFC 1321) for the premise/conclusion demo: each message is the hex MD5 of the one
 * before, so that corruption shows. Not for security. */
#ifndef DEMO_MD5_H
#define DEMO_MD5_H

#include <stddef.h>

/* Writes the lowercase hex digest of `length` bytes at `data` and a NUL into `out`. */
void md5_hex(const unsigned char *data, size_t length, char out[33]);

#endif
