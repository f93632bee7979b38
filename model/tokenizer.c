/* CLIP byte-level BPE tokenizer, the same ids as Hugging Face's fast CLIPTokenizer:
 *
 *   1. special tokens (bos, eos, pad, unk strings) are cut out of the raw text first, as
 *      the tokenizers library does with its added tokens;
 *   2. each piece between them is normalized: NFC, then lower-case (the normalizer's
 *      whitespace collapse does not change ids: whitespace only separates words);
 *   3. pre-tokenized by CLIP's pattern
 *        <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      with a literal "<|startoftext|>" split again into "<|", "startoftext", "|>" as the
 *      byte-level pre-tokenizer's GPT-2 pattern does;
 *   4. each word's UTF-8 bytes become byte-unicode symbols (the last one with "</w>") and
 *      are merged by BPE rank: the lowest-ranked adjacent pair first, leftmost on ties.
 *
 * Symbols are vocabulary ids from the start, and merges a hash map (left id, right id) ->
 * (rank, merged id), so encoding never touches strings. No word cache: encode stays a pure
 * function of a const tokenizer, safe to call from several threads. */
#include "model/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer_unicode.h"

#define N_SPECIALS 4 /* bos, eos, pad, unk */

typedef struct {
  uint64_t key; /* left id << 32 | right id */
  int32_t rank; /* -1: empty slot */
  int32_t merged;
} merge_slot_t;

typedef struct {
  char *text;
  size_t len;
  int32_t id;
} special_t;

struct rcc_tokenizer {
  int vocab_size; /* max id in vocab.json + 1 */
  int32_t bos_id, eos_id, pad_id;
  int32_t byte_id[256];     /* id of the byte-unicode symbol of each byte */
  int32_t byte_end_id[256]; /* the same symbol followed by "</w>" */
  merge_slot_t *merges;     /* open addressing, linear probing */
  size_t merge_cap;         /* a power of two, at least twice the number of merges */
  special_t specials[N_SPECIALS];
  int n_specials;
};

/* ---- files ---------------------------------------------------------------------------- */

static char *join_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Reads a whole file, NUL-terminated. *missing is set (and nothing recorded) when the file
 * does not exist and missing is non-NULL; any other failure is an error naming the path. */
static rcc_status_t read_file(const char *path, char **out, size_t *len, int *missing) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (missing && errno == ENOENT) {
      *missing = 1;
      return RCC_OK;
    }
    return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  }
  if (missing) *missing = 0;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) free(buf);
    buf = bigger, cap *= 2;
  }
  int read_error = ferror(f);
  fclose(f);
  if (!buf) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory reading the file", path);
  if (read_error) {
    free(buf);
    return rcc_fail(RCC_ERR_IO, "%s: read error", path);
  }
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return RCC_OK;
}

static rcc_status_t parse_json(const char *path, const char *text, size_t len, cJSON **out) {
  const char *end = NULL;
  *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!*out) {
    long offset = end ? (long)(end - text) : 0;
    return rcc_fail(RCC_ERR_FORMAT, "%s: not valid JSON near byte %ld", path, offset);
  }
  return RCC_OK;
}

/* ---- vocabulary: string -> id, needed while loading only --------------------------------- */

typedef struct {
  const char *key; /* points into the parsed cJSON tree */
  int32_t id;
} vocab_slot_t;

typedef struct {
  vocab_slot_t *slots; /* open addressing; key NULL = empty */
  size_t cap;          /* a power of two */
} vocab_map_t;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int32_t vocab_find(const vocab_map_t *m, const char *s, size_t n) {
  for (size_t i = hash_bytes(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const vocab_slot_t *slot = &m->slots[i];
    if (!slot->key) return -1;
    if (strlen(slot->key) == n && memcmp(slot->key, s, n) == 0) return slot->id;
  }
}

/* Fills the map from vocab.json's object {token: id, ...}; keys stay owned by root. */
static rcc_status_t vocab_build(const char *path, const cJSON *root, vocab_map_t *m,
                                int *vocab_size) {
  if (!cJSON_IsObject(root))
    return rcc_fail(RCC_ERR_FORMAT, "%s: expected an object {token: id}", path);
  size_t n = (size_t)cJSON_GetArraySize(root);
  if (n == 0) return rcc_fail(RCC_ERR_FORMAT, "%s: empty vocabulary", path);
  m->cap = 16;
  while (m->cap < 2 * n) m->cap *= 2;
  m->slots = calloc(m->cap, sizeof(*m->slots));
  if (!m->slots) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for %zu tokens", path, n);
  int32_t max_id = -1;
  const cJSON *item;
  cJSON_ArrayForEach(item, root) {
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v < 0 || v >= (double)INT32_MAX || v != (double)(int32_t)v)
      return rcc_fail(RCC_ERR_FORMAT, "%s: token \"%s\": id is not an integer in [0, 2^31-1)",
                      path, item->string);
    size_t len = strlen(item->string);
    size_t i = hash_bytes(item->string, len) & (m->cap - 1);
    while (m->slots[i].key) {
      if (strcmp(m->slots[i].key, item->string) == 0)
        return rcc_fail(RCC_ERR_FORMAT, "%s: token \"%s\" appears twice", path, item->string);
      i = (i + 1) & (m->cap - 1);
    }
    m->slots[i] = (vocab_slot_t){item->string, (int32_t)v};
    if ((int32_t)v > max_id) max_id = (int32_t)v;
  }
  *vocab_size = max_id + 1;
  return RCC_OK;
}

/* ---- byte-unicode symbols --------------------------------------------------------------- */

/* Byte-level BPE shows every byte as a printable code point: bytes that print as themselves
 * (! .. ~, U+00A1 .. U+00AC, U+00AE .. U+00FF) keep their value, the other 68 bytes take
 * U+0100, U+0101, ... in increasing byte order. */
static uint32_t byte_symbol(int b) {
  int keeps = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  if (keeps) return (uint32_t)b;
  uint32_t shifted = 0;
  for (int c = 0; c < b; c++)
    shifted += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
  return 256 + shifted;
}

static rcc_status_t load_byte_symbols(rcc_tokenizer_t *tok, const vocab_map_t *vocab,
                                      const char *path) {
  for (int b = 0; b < 256; b++) {
    char sym[4 + 4 + 1];
    size_t n = rcc_utf8_encode(byte_symbol(b), (unsigned char *)sym);
    memcpy(sym + n, "</w>", 5);
    tok->byte_id[b] = vocab_find(vocab, sym, n);
    tok->byte_end_id[b] = vocab_find(vocab, sym, n + 4);
    if (tok->byte_id[b] < 0 || tok->byte_end_id[b] < 0) {
      sym[n] = '\0';
      return rcc_fail(RCC_ERR_FORMAT, "%s: byte-level symbol \"%s\" (byte 0x%02X) or \"%s</w>\" "
                      "missing: not a CLIP vocabulary", path, sym, b, sym);
    }
  }
  return RCC_OK;
}

/* ---- merges ------------------------------------------------------------------------------ */

static uint64_t merge_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static size_t merge_hash(uint64_t key, size_t cap) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static const merge_slot_t *merge_find(const rcc_tokenizer_t *tok, int32_t a, int32_t b) {
  uint64_t key = merge_key(a, b);
  for (size_t i = merge_hash(key, tok->merge_cap);; i = (i + 1) & (tok->merge_cap - 1)) {
    const merge_slot_t *slot = &tok->merges[i];
    if (slot->rank < 0) return NULL;
    if (slot->key == key) return slot;
  }
}

/* merges.txt: an optional "#version" line, then one "left right" pair per line, in rank
 * order. A later duplicate of a pair overrides the earlier one, as in Hugging Face. */
static rcc_status_t load_merges(rcc_tokenizer_t *tok, const vocab_map_t *vocab, const char *path,
                                char *text) {
  size_t n_lines = 1;
  for (const char *c = text; *c; c++) n_lines += *c == '\n';
  tok->merge_cap = 16;
  while (tok->merge_cap < 2 * n_lines) tok->merge_cap *= 2;
  tok->merges = malloc(tok->merge_cap * sizeof(*tok->merges));
  if (!tok->merges) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for %zu merges", path, n_lines);
  for (size_t i = 0; i < tok->merge_cap; i++) tok->merges[i].rank = -1;

  int32_t rank = 0;
  size_t line_no = 0;
  for (char *line = text; line; ) {
    char *next = strchr(line, '\n');
    if (next) *next++ = '\0';
    line_no++;
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
    if (len == 0 || (line_no == 1 && strncmp(line, "#version", 8) == 0)) {
      line = next;
      continue;
    }
    char *space = strchr(line, ' ');
    if (!space || space == line || space[1] == '\0' || strchr(space + 1, ' '))
      return rcc_fail(RCC_ERR_FORMAT, "%s:%zu: expected \"left right\", got \"%s\"", path,
                      line_no, line);
    size_t left_len = (size_t)(space - line), right_len = len - left_len - 1;
    int32_t a = vocab_find(vocab, line, left_len);
    int32_t b = vocab_find(vocab, space + 1, right_len);
    /* The merged token is the two halves without the space. */
    memmove(space, space + 1, right_len + 1);
    int32_t merged = vocab_find(vocab, line, len - 1);
    if (a < 0 || b < 0 || merged < 0) {
      const char *which = a < 0 ? "left token" : b < 0 ? "right token" : "merged token";
      return rcc_fail(RCC_ERR_FORMAT, "%s:%zu: %s of \"%.*s %s\" is not in vocab.json", path,
                      line_no, which, (int)left_len, line, line + left_len);
    }
    uint64_t key = merge_key(a, b);
    size_t i = merge_hash(key, tok->merge_cap);
    while (tok->merges[i].rank >= 0 && tok->merges[i].key != key) i = (i + 1) & (tok->merge_cap - 1);
    tok->merges[i] = (merge_slot_t){key, rank++, merged};
    line = next;
  }
  return RCC_OK;
}

/* ---- special tokens ---------------------------------------------------------------------- */

/* A special token in tokenizer_config.json / special_tokens_map.json: a string, or (as
 * transformers 4 writes them) an object whose "content" is the string. NULL if absent. */
static const char *special_string(const cJSON *root, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
  if (cJSON_IsObject(item)) item = cJSON_GetObjectItemCaseSensitive(item, "content");
  return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Looks up the four special strings: tokenizer_config.json first, then
 * special_tokens_map.json, then CLIP's defaults. Both files are optional. */
static rcc_status_t load_specials(rcc_tokenizer_t *tok, const vocab_map_t *vocab,
                                  const char *model_dir) {
  static const char *const keys[N_SPECIALS] = {"bos_token", "eos_token", "pad_token", "unk_token"};
  static const char *const defaults[N_SPECIALS] = {"<|startoftext|>", "<|endoftext|>",
                                                   "<|endoftext|>", "<|endoftext|>"};
  static const char *const files[2] = {"tokenizer_config.json", "special_tokens_map.json"};
  cJSON *roots[2] = {NULL, NULL};
  char *paths[2] = {NULL, NULL};
  rcc_status_t st = RCC_OK;
  for (int f = 0; f < 2 && st == RCC_OK; f++) {
    paths[f] = join_path(model_dir, files[f]);
    if (!paths[f]) {
      st = rcc_fail(RCC_ERR_NOMEM, "%s/%s: out of memory", model_dir, files[f]);
      break;
    }
    char *text = NULL;
    size_t len = 0;
    int missing = 0;
    st = read_file(paths[f], &text, &len, &missing);
    if (st == RCC_OK && !missing) {
      st = parse_json(paths[f], text, len, &roots[f]);
      if (st == RCC_OK && !cJSON_IsObject(roots[f]))
        st = rcc_fail(RCC_ERR_FORMAT, "%s: expected a JSON object", paths[f]);
    }
    free(text);
  }
  int32_t ids[N_SPECIALS];
  for (int k = 0; k < N_SPECIALS && st == RCC_OK; k++) {
    const char *s = NULL, *from = "defaults";
    for (int f = 0; f < 2 && !s; f++)
      if (roots[f] && (s = special_string(roots[f], keys[k]))) from = paths[f];
    if (!s) s = defaults[k];
    ids[k] = vocab_find(vocab, s, strlen(s));
    if (ids[k] < 0) {
      st = rcc_fail(RCC_ERR_FORMAT, "%s: %s \"%s\" is not in vocab.json", from, keys[k], s);
      break;
    }
    int seen = 0;
    for (int j = 0; j < tok->n_specials; j++) seen |= strcmp(tok->specials[j].text, s) == 0;
    if (seen) continue;
    special_t *sp = &tok->specials[tok->n_specials];
    sp->text = strdup(s);
    if (!sp->text) {
      st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", from);
      break;
    }
    sp->len = strlen(s);
    sp->id = ids[k];
    tok->n_specials++;
  }
  if (st == RCC_OK) tok->bos_id = ids[0], tok->eos_id = ids[1], tok->pad_id = ids[2];
  for (int f = 0; f < 2; f++) {
    cJSON_Delete(roots[f]);
    free(paths[f]);
  }
  return st;
}

/* ---- load / free ---------------------------------------------------------------------------- */

static rcc_status_t load_into(rcc_tokenizer_t *tok, const char *model_dir, char *vocab_path,
                              char *merges_path) {
  char *vocab_text = NULL, *merges_text = NULL;
  size_t vocab_len = 0;
  cJSON *vocab_root = NULL;
  vocab_map_t vocab = {NULL, 0};
  rcc_status_t st = read_file(vocab_path, &vocab_text, &vocab_len, NULL);
  if (st == RCC_OK) st = parse_json(vocab_path, vocab_text, vocab_len, &vocab_root);
  if (st == RCC_OK) st = vocab_build(vocab_path, vocab_root, &vocab, &tok->vocab_size);
  if (st == RCC_OK) st = load_byte_symbols(tok, &vocab, vocab_path);
  if (st == RCC_OK) st = read_file(merges_path, &merges_text, NULL, NULL);
  if (st == RCC_OK) st = load_merges(tok, &vocab, merges_path, merges_text);
  if (st == RCC_OK) st = load_specials(tok, &vocab, model_dir);
  free(vocab.slots);
  cJSON_Delete(vocab_root);
  free(vocab_text);
  free(merges_text);
  return st;
}

rcc_status_t rcc_tokenizer_load(const char *model_dir, rcc_tokenizer_t **out) {
  if (!model_dir || !out) return rcc_fail(RCC_ERR_ARG, "rcc_tokenizer_load: NULL argument");
  *out = NULL;
  rcc_tokenizer_t *tok = calloc(1, sizeof(*tok));
  char *vocab_path = join_path(model_dir, "vocab.json");
  char *merges_path = join_path(model_dir, "merges.txt");
  rcc_status_t st = (tok && vocab_path && merges_path)
                        ? load_into(tok, model_dir, vocab_path, merges_path)
                        : rcc_fail(RCC_ERR_NOMEM, "%s: out of memory loading the tokenizer", model_dir);
  free(vocab_path);
  free(merges_path);
  if (st != RCC_OK) {
    rcc_tokenizer_free(tok);
    return st;
  }
  *out = tok;
  return RCC_OK;
}

void rcc_tokenizer_free(rcc_tokenizer_t *tok) {
  if (!tok) return;
  for (int i = 0; i < tok->n_specials; i++) free(tok->specials[i].text);
  free(tok->merges);
  free(tok);
}

int rcc_tokenizer_bos_id(const rcc_tokenizer_t *tok) { return tok->bos_id; }
int rcc_tokenizer_eos_id(const rcc_tokenizer_t *tok) { return tok->eos_id; }
int rcc_tokenizer_pad_id(const rcc_tokenizer_t *tok) { return tok->pad_id; }
int rcc_tokenizer_vocab_size(const rcc_tokenizer_t *tok) { return tok->vocab_size; }

/* ---- encoding ---------------------------------------------------------------------------- */

/* The content ids of one text (no bos/eos), growing up to `limit` and then ignoring the rest. */
typedef struct {
  int32_t *ids;
  size_t n, cap, limit;
  uint32_t *raw, *nfc, *cps; /* scratch: a segment's code points as read, NFC, lower-cased */
  size_t raw_cap, nfc_cap, cps_cap;
  int32_t *word; /* scratch: symbol ids of the current word */
  size_t word_cap;
  int32_t *links; /* scratch: next and previous symbol of each in the word, -1 at the ends */
  size_t links_cap;
  struct pair *heap; /* scratch: candidate merges of the word */
  size_t heap_cap;
} encoder_t;

/* A candidate merge of the symbols at positions left and right of a word, as they were when
 * it was found: stale once either has changed (ids a and b no longer there). */
typedef struct pair {
  int32_t rank, left, right, a, b, merged;
} pair_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 1;
  size_t c = *cap ? *cap : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * elem);
  if (!q) return 0;
  *p = q, *cap = c;
  return 1;
}

static rcc_status_t push_id(encoder_t *e, int32_t id) {
  if (e->n >= e->limit) return RCC_OK;
  if (!grow((void **)&e->ids, &e->cap, e->n + 1, sizeof(int32_t)))
    return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
  e->ids[e->n++] = id;
  return RCC_OK;
}

/* Min-heap on (rank, left): the lowest rank first, the leftmost among equals. */
static int pair_before(const pair_t *x, const pair_t *y) {
  return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void heap_push(pair_t *h, size_t *n, pair_t p) {
  size_t i = (*n)++;
  for (; i > 0 && pair_before(&p, &h[(i - 1) / 2]); i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
  h[i] = p;
}

static pair_t heap_pop(pair_t *h, size_t *n) {
  pair_t top = h[0], last = h[--*n];
  size_t i = 0;
  for (size_t c; (c = 2 * i + 1) < *n; i = c) {
    if (c + 1 < *n && pair_before(&h[c + 1], &h[c])) c++;
    if (!pair_before(&h[c], &last)) break;
    h[i] = h[c];
  }
  if (*n > 0) h[i] = last;
  return top;
}

/* Pushes the merge of the symbols at positions l and r of w, when there is one. */
static void push_pair(const rcc_tokenizer_t *tok, const int32_t *w, pair_t *h, size_t *n,
                      int32_t l, int32_t r) {
  if (l < 0 || r < 0) return;
  const merge_slot_t *m = merge_find(tok, w[l], w[r]);
  if (m) heap_push(h, n, (pair_t){m->rank, l, r, w[l], w[r], m->merged});
}

/* BPE of one pre-tokenized word cps[0..n) (n >= 1): its UTF-8 bytes as symbols, the last
 * one with "</w>", merged pair by pair, the lowest rank first (leftmost among equals).
 * The symbols form a linked list and the candidate merges a heap, so a word of L symbols
 * takes O(L log L): rescanning every pair after each merge took O(L^2), half a minute for
 * a 20 KB word (found by tests/fuzz). A merged symbol keeps its left part's position,
 * so positions keep the word's order and "leftmost" is the smallest position. */
static rcc_status_t encode_word(const rcc_tokenizer_t *tok, encoder_t *e, const uint32_t *cps,
                                size_t n) {
  if (!grow((void **)&e->word, &e->word_cap, 4 * n, sizeof(int32_t)))
    return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char bytes[4];
    size_t nb = rcc_utf8_encode(cps[i], bytes);
    for (size_t j = 0; j < nb; j++) e->word[len++] = tok->byte_id[bytes[j]];
    if (i == n - 1) e->word[len - 1] = tok->byte_end_id[bytes[nb - 1]];
  }
  /* Every merge removes one symbol and finds at most two new pairs: 3 L pushes at most. */
  if (!grow((void **)&e->links, &e->links_cap, 2 * len, sizeof(int32_t)) ||
      !grow((void **)&e->heap, &e->heap_cap, 3 * len, sizeof(pair_t)))
    return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
  int32_t *w = e->word, *next = e->links, *prev = e->links + len;
  size_t n_heap = 0;
  for (size_t i = 0; i < len; i++) {
    next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
    prev[i] = (int32_t)i - 1;
  }
  for (size_t i = 0; i + 1 < len; i++)
    push_pair(tok, w, e->heap, &n_heap, (int32_t)i, (int32_t)i + 1);
  while (n_heap > 0) {
    pair_t p = heap_pop(e->heap, &n_heap);
    if (w[p.left] != p.a || next[p.left] != p.right || w[p.right] != p.b) continue; /* stale */
    w[p.left] = p.merged;
    w[p.right] = -1;
    next[p.left] = next[p.right];
    if (next[p.right] >= 0) prev[next[p.right]] = p.left;
    push_pair(tok, w, e->heap, &n_heap, prev[p.left], p.left);
    push_pair(tok, w, e->heap, &n_heap, p.left, next[p.left]);
  }
  /* Position 0 is never merged away: it is no pair's right part. */
  for (int32_t i = 0; i >= 0; i = next[i]) RCC_TRY(push_id(e, w[i]));
  return RCC_OK;
}

/* Length of CLIP's contraction at c[0..n) ('s 't 're 've 'm 'll 'd, already lower-cased),
 * or 0. */
static size_t contraction_len(const uint32_t *c, size_t n) {
  if (n < 2 || c[0] != '\'') return 0;
  if (c[1] == 's' || c[1] == 't' || c[1] == 'm' || c[1] == 'd') return 2;
  if (n >= 3 && ((c[1] == 'r' && c[2] == 'e') || (c[1] == 'v' && c[2] == 'e') ||
                 (c[1] == 'l' && c[2] == 'l')))
    return 3;
  return 0;
}

/* Length of "<|name|>" at c[0..n) for name startoftext / endoftext, or 0. */
static size_t special_literal_len(const uint32_t *c, size_t n) {
  static const char *const names[2] = {"<|startoftext|>", "<|endoftext|>"};
  for (int k = 0; k < 2; k++) {
    size_t len = strlen(names[k]), i = 0;
    while (i < len && i < n && c[i] == (unsigned char)names[k][i]) i++;
    if (i == len) return len;
  }
  return 0;
}

/* Normalizes, pre-tokenizes and encodes the raw UTF-8 text s[0..n) (no special tokens). */
static rcc_status_t encode_segment(const rcc_tokenizer_t *tok, encoder_t *e, const char *s,
                                   size_t n) {
  if (!grow((void **)&e->raw, &e->raw_cap, n, sizeof(uint32_t)))
    return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
  size_t n_cps = 0;
  int ascii = 1;
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    i += rcc_utf8_decode((const unsigned char *)s + i, n - i, &cp); /* validated by caller */
    e->raw[n_cps++] = cp;
    ascii &= cp < 0x80;
  }
  const uint32_t *norm = e->raw; /* NFC changes nothing in ASCII */
  if (!ascii) {
    if (!grow((void **)&e->nfc, &e->nfc_cap, RCC_NFC_EXPANSION * n_cps, sizeof(uint32_t)))
      return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
    n_cps = rcc_unicode_nfc(e->raw, n_cps, e->nfc);
    norm = e->nfc;
  }
  /* Lower case: one code point becomes at most two. */
  if (!grow((void **)&e->cps, &e->cps_cap, 2 * n_cps + 1, sizeof(uint32_t)))
    return rcc_fail(RCC_ERR_NOMEM, "rcc_tokenizer_encode: out of memory");
  uint32_t *c = e->cps;
  size_t m = 0;
  for (size_t i = 0; i < n_cps; i++) m += (size_t)rcc_unicode_lower(norm[i], c + m);

  for (size_t i = 0; i < m && e->n < e->limit;) {
    uint32_t cp = c[i];
    size_t len;
    if (rcc_unicode_is_space(cp)) {
      i++;
      continue;
    }
    if ((len = special_literal_len(c + i, m - i)) > 0) {
      /* The byte-level pre-tokenizer splits it again: "<|", the name, "|>". */
      RCC_TRY(encode_word(tok, e, c + i, 2));
      RCC_TRY(encode_word(tok, e, c + i + 2, len - 4));
      RCC_TRY(encode_word(tok, e, c + i + len - 2, 2));
      i += len;
      continue;
    }
    if ((len = contraction_len(c + i, m - i)) == 0) {
      len = 1;
      if (rcc_unicode_is_letter(cp)) {
        while (i + len < m && rcc_unicode_is_letter(c[i + len])) len++;
      } else if (!rcc_unicode_is_number(cp)) {
        while (i + len < m && !rcc_unicode_is_space(c[i + len]) &&
               !rcc_unicode_is_letter(c[i + len]) && !rcc_unicode_is_number(c[i + len]))
          len++;
      }
    }
    RCC_TRY(encode_word(tok, e, c + i, len));
    i += len;
  }
  return RCC_OK;
}

/* The special token whose text starts at s[0..n) (the longest, if several), or NULL. */
static const special_t *special_at(const rcc_tokenizer_t *tok, const char *s, size_t n) {
  const special_t *best = NULL;
  for (int k = 0; k < tok->n_specials; k++) {
    const special_t *sp = &tok->specials[k];
    if (sp->len <= n && memcmp(s, sp->text, sp->len) == 0 && (!best || sp->len > best->len))
      best = sp;
  }
  return best;
}

static rcc_status_t encode_text(const rcc_tokenizer_t *tok, encoder_t *e, const char *text) {
  size_t n = strlen(text);
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = rcc_utf8_decode((const unsigned char *)text + i, n - i, &cp);
    if (len == 0)
      return rcc_fail(RCC_ERR_ARG, "rcc_tokenizer_encode: text is not valid UTF-8 at byte %zu", i);
    i += len;
  }
  size_t start = 0;
  for (size_t i = 0; i < n && e->n < e->limit;) {
    const special_t *sp = special_at(tok, text + i, n - i);
    if (!sp) {
      i++;
      continue;
    }
    RCC_TRY(encode_segment(tok, e, text + start, i - start));
    RCC_TRY(push_id(e, sp->id));
    i += sp->len;
    start = i;
  }
  if (start < n) RCC_TRY(encode_segment(tok, e, text + start, n - start));
  return RCC_OK;
}

rcc_status_t rcc_tokenizer_encode(const rcc_tokenizer_t *tok, const char *text, int max_len,
                                  int32_t *ids, int *n_tokens) {
  if (!tok || !text || !ids || !n_tokens)
    return rcc_fail(RCC_ERR_ARG, "rcc_tokenizer_encode: NULL argument");
  if (max_len < 2)
    return rcc_fail(RCC_ERR_ARG, "rcc_tokenizer_encode: max_len %d leaves no room for the start "
                    "and end tokens", max_len);
  encoder_t e = {.limit = (size_t)max_len - 2};
  rcc_status_t st = encode_text(tok, &e, text);
  if (st == RCC_OK) {
    ids[0] = tok->bos_id;
    if (e.n > 0) memcpy(ids + 1, e.ids, e.n * sizeof(int32_t));
    ids[e.n + 1] = tok->eos_id;
    for (int i = (int)e.n + 2; i < max_len; i++) ids[i] = tok->pad_id;
    *n_tokens = (int)e.n + 2;
  }
  free(e.ids);
  free(e.raw);
  free(e.nfc);
  free(e.cps);
  free(e.word);
  free(e.links);
  free(e.heap);
  return st;
}
