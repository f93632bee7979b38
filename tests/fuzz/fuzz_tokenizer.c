/* Fuzz target: the CLIP BPE tokenizer (model/tokenizer.c). The first input byte picks
 * what is fuzzed:
 *   even: the rest is text encoded by the fixed valid tokenizer of
 *         tests/fixtures/tokenizer, with max_len 2 + byte/2 (2 .. 129);
 *   odd:  the rest, split at its first NUL byte, is vocab.json and merges.txt of a new
 *         tokenizer (written to the scratch folder); one that loads then encodes a fixed
 *         text with every byte value in it.
 * Whatever encodes must give exactly max_len ids, start with bos, and stay in the
 * vocabulary. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "model/tokenizer.h"

enum { MAX_IDS = 129 };

static void encode_and_check(const rcc_tokenizer_t *tok, const char *text, int max_len) {
  int32_t ids[MAX_IDS + 1];
  ids[max_len] = -7; /* guard: must not be written */
  int n = -1;
  if (rcc_tokenizer_encode(tok, text, max_len, ids, &n) != RCC_OK) return;
  int bad = n < 2 || n > max_len || ids[0] != rcc_tokenizer_bos_id(tok) || ids[max_len] != -7;
  for (int i = 0; i < max_len && !bad; i++)
    bad = ids[i] < 0 || ids[i] >= rcc_tokenizer_vocab_size(tok);
  if (bad) {
    fprintf(stderr, "fuzz_tokenizer: bad encoding (n_tokens %d, max_len %d)\n", n, max_len);
    abort();
  }
}

static void fuzz_encode(const uint8_t *data, size_t size, int max_len) {
  static rcc_tokenizer_t *tok;
  if (!tok && rcc_tokenizer_load(RCC_SOURCE_DIR "/tests/fixtures/tokenizer", &tok) != RCC_OK) {
    fprintf(stderr, "fuzz_tokenizer: cannot load the fixture: %s\n", rcc_last_error());
    abort();
  }
  char *text = fuzz_cstr(data, size);
  encode_and_check(tok, text, max_len);
  free(text);
}

static void fuzz_load(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t vocab_len = nul ? (size_t)(nul - data) : size;
  const char *dir = fuzz_dir();
  fuzz_write(fuzz_path("vocab.json"), data, vocab_len);
  fuzz_write(fuzz_path("merges.txt"), nul ? nul + 1 : data + size, nul ? size - vocab_len - 1 : 0);
  rcc_tokenizer_t *tok = NULL;
  if (rcc_tokenizer_load(dir, &tok) != RCC_OK) return;
  char text[512];
  size_t n = 0;
  n +=
      (size_t)snprintf(text, sizeof text, "a Photo of 2 cats, <|endoftext|> it's x<|startoftext|>");
  for (int b = 1; b < 128; b++)
    text[n++] = (char)b; /* every ASCII byte but NUL */
  memcpy(text + n, " h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 17);
  encode_and_check(tok, text, 77);
  rcc_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0)
    fuzz_encode(data + 1, size - 1, 2 + data[0] / 2);
  else
    fuzz_load(data + 1, size - 1);
  return 0;
}
