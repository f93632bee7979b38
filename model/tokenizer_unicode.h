/* Unicode helpers private to the CLIP tokenizer (model/tokenizer.c): UTF-8 decoding, the
 * character classes of its pre-tokenizer pattern, lower-casing and NFC, from
 * tables generated out of Python's Unicode database (model/tokenizer_unicode_tables.h). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Decodes one UTF-8 sequence at s[0..n): stores the code point and returns its length in
 * bytes, or 0 when the bytes there are not valid UTF-8 (overlong, surrogate, truncated). */
size_t rcc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes the UTF-8 encoding of cp (<= 0x10FFFF) to out[0..4) and returns its length. */
size_t rcc_utf8_encode(uint32_t cp, unsigned char out[4]);

/* \s (Unicode White_Space), \p{L} (general category L*), \p{N} (N*). */
int rcc_unicode_is_space(uint32_t cp);
int rcc_unicode_is_letter(uint32_t cp);
int rcc_unicode_is_number(uint32_t cp);
/* Lower case of one code point as Rust's char::to_lowercase gives it (no context, so a
 * capital sigma is always U+03C3): writes 1 or 2 code points to out and returns the count. */
int rcc_unicode_lower(uint32_t cp, uint32_t out[2]);
/* Writes the NFC form of in[0..n) to out and returns its length; out must have room for
 * RCC_NFC_EXPANSION * n code points (the canonical decomposition of one code point is at
 * most 4 long; composing only shortens it). */
#define RCC_NFC_EXPANSION 4
size_t rcc_unicode_nfc(const uint32_t *in, size_t n, uint32_t *out);
