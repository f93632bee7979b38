/* Unicode pieces of the CLIP tokenizer's normalizer and pre-tokenizer: UTF-8, \s \p{L}
 * \p{N}, lower-casing and NFC. ASCII is handled without tables; other code points go
 * through tables generated from Python's Unicode database (14.0), which may lag the Unicode
 * version of Hugging Face tokenizers (Oniguruma, Rust std) on recently added characters.
 * NFC is the full algorithm: canonical decomposition (Hangul by arithmetic), canonical
 * ordering of combining marks, then canonical composition. */
#include "model/tokenizer_unicode.h"

#include "model/tokenizer_unicode_tables.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

size_t rcc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

size_t rcc_utf8_encode(uint32_t cp, unsigned char out[4]) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | (cp >> 18));
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Index of the row whose [first, last] (columns 0 and 1) holds cp, or -1; rows sorted. */
static long find_range(const uint32_t *rows, size_t n_rows, size_t width, uint32_t cp) {
  size_t lo = 0, hi = n_rows;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const uint32_t *row = rows + mid * width;
    if (cp < row[0]) {
      hi = mid;
    } else if (cp > row[1]) {
      lo = mid + 1;
    } else {
      return (long)mid;
    }
  }
  return -1;
}

int rcc_unicode_is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int rcc_unicode_is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return find_range(&rcc_tok_letter_ranges[0][0], ARRAY_LEN(rcc_tok_letter_ranges), 2, cp) >= 0;
}

int rcc_unicode_is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return find_range(&rcc_tok_number_ranges[0][0], ARRAY_LEN(rcc_tok_number_ranges), 2, cp) >= 0;
}

int rcc_unicode_lower(uint32_t cp, uint32_t out[2]) {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  if (cp == 0x130) { /* LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE */
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  long r = find_range(&rcc_tok_lower_runs[0][0], ARRAY_LEN(rcc_tok_lower_runs), 4, cp);
  out[0] = cp;
  if (r >= 0) {
    const uint32_t *run = rcc_tok_lower_runs[r];
    if ((cp - run[0]) % run[2] == 0) out[0] = cp + run[3]; /* run[3] wraps for negative deltas */
  }
  return 1;
}

static int combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  long r = find_range(&rcc_tok_combining_ranges[0][0], ARRAY_LEN(rcc_tok_combining_ranges), 3, cp);
  return r >= 0 ? (int)rcc_tok_combining_ranges[r][2] : 0;
}

/* Hangul syllables compose arithmetically: L V -> LV, LV T -> LVT (Unicode section 3.12). */
enum { HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7 };
enum { HANGUL_L_N = 19, HANGUL_V_N = 21, HANGUL_T_N = 28, HANGUL_S_N = 19 * 21 * 28 };

/* The primary composite of (a, b), or 0 when they do not compose. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= HANGUL_L && a < HANGUL_L + HANGUL_L_N && b >= HANGUL_V && b < HANGUL_V + HANGUL_V_N)
    return HANGUL_S + ((a - HANGUL_L) * HANGUL_V_N + (b - HANGUL_V)) * HANGUL_T_N;
  if (a >= HANGUL_S && a < HANGUL_S + HANGUL_S_N && (a - HANGUL_S) % HANGUL_T_N == 0 &&
      b > HANGUL_T && b < HANGUL_T + HANGUL_T_N)
    return a + (b - HANGUL_T);
  size_t lo = 0, hi = ARRAY_LEN(rcc_tok_compositions);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const uint32_t *row = rcc_tok_compositions[mid];
    if (a < row[0] || (a == row[0] && b < row[1])) {
      hi = mid;
    } else if (a > row[0] || b > row[1]) {
      lo = mid + 1;
    } else {
      return row[2];
    }
  }
  return 0;
}

/* Appends the full canonical decomposition of cp to out; returns the new length. */
static size_t decompose(uint32_t cp, uint32_t *out, size_t n) {
  if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_S_N) {
    uint32_t s = cp - HANGUL_S;
    out[n++] = HANGUL_L + s / (HANGUL_V_N * HANGUL_T_N);
    out[n++] = HANGUL_V + (s % (HANGUL_V_N * HANGUL_T_N)) / HANGUL_T_N;
    if (s % HANGUL_T_N != 0) out[n++] = HANGUL_T + s % HANGUL_T_N;
    return n;
  }
  if (cp >= 0xC0) { /* nothing below U+00C0 decomposes */
    size_t lo = 0, hi = ARRAY_LEN(rcc_tok_decompositions);
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      const uint32_t *row = rcc_tok_decompositions[mid];
      if (cp < row[0]) {
        hi = mid;
      } else if (cp > row[0]) {
        lo = mid + 1;
      } else {
        n = decompose(row[1], out, n);
        return row[2] != 0 ? decompose(row[2], out, n) : n;
      }
    }
  }
  out[n++] = cp;
  return n;
}

size_t rcc_unicode_nfc(const uint32_t *in, size_t n, uint32_t *out) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len = decompose(in[i], out, len);
  if (len == 0) return 0;

  /* Canonical ordering: a stable sort by combining class within each run of marks. */
  for (size_t i = 1; i < len; i++) {
    int cls = combining_class(out[i]);
    if (cls == 0) continue;
    uint32_t c = out[i];
    size_t j = i;
    while (j > 0 && combining_class(out[j - 1]) > cls) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = c;
  }

  /* Composition: a mark composes with the last starter unless a character between them
   * blocks it: one of class 0, or of a class >= its own. last_class 0 means "adjacent to
   * the starter"; 256 (above every class) stops composition onto a mark opening the text. */
  size_t starter = 0, kept = 1;
  int last_class = combining_class(out[0]) == 0 ? 0 : 256;
  for (size_t i = 1; i < len; i++) {
    uint32_t c = out[i];
    int cls = combining_class(c);
    uint32_t composite = compose_pair(out[starter], c);
    if (composite != 0 && (last_class < cls || last_class == 0)) {
      out[starter] = composite;
      continue;
    }
    if (cls == 0) starter = kept;
    last_class = cls;
    out[kept++] = c;
  }
  return kept;
}
