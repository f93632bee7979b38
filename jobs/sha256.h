/* SHA-256 (FIPS 180-4): the fingerprint of a job file's raw bytes (report.json's
 * `job_sha256`) and of anything else that must be recognised byte for byte later. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];     /* running hash state */
  uint64_t bytes;    /* message length so far */
  uint8_t block[64]; /* partial input block */
  size_t fill;       /* bytes used in block */
} rcc_sha256_t;

void rcc_sha256_init(rcc_sha256_t *s);
void rcc_sha256_update(rcc_sha256_t *s, const void *data, size_t n);
/* Pads, writes the 32-byte digest and leaves `s` to be re-initialised before reuse. */
void rcc_sha256_final(rcc_sha256_t *s, uint8_t digest[32]);
/* One-shot digest of a buffer. */
void rcc_sha256(uint8_t digest[32], const void *data, size_t n);
/* Lower-case hex of a digest: 64 characters and a terminating NUL. */
void rcc_sha256_hex(char hex[65], const uint8_t digest[32]);
