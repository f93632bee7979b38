/* CLIP byte-level BPE tokenizer, read from a Hugging Face checkpoint directory
 * (vocab.json, merges.txt, and tokenizer_config.json / special_tokens_map.json when present).
 * Produces the same input_ids as transformers' CLIPTokenizer / CLIPTokenizerFast:
 * whitespace clean-up and lower-casing, CLIP's pre-tokenizer pattern, byte-to-unicode,
 * BPE with "</w>" word ends, <|startoftext|> ... <|endoftext|>, truncation to max_length
 * (specials kept) and padding with the pad token to max_length. */
#pragma once
#include <stdint.h>

#include "common/status.h"

typedef struct rcc_tokenizer rcc_tokenizer_t;

rcc_status_t rcc_tokenizer_load(const char *model_dir, rcc_tokenizer_t **out);
void rcc_tokenizer_free(rcc_tokenizer_t *tok);
/* Writes exactly max_len ids (padded) and sets *n_tokens to the unpadded length
 * (with start and end tokens). */
rcc_status_t rcc_tokenizer_encode(const rcc_tokenizer_t *tok, const char *text, int max_len,
                                  int32_t *ids, int *n_tokens);
int rcc_tokenizer_bos_id(const rcc_tokenizer_t *tok);
int rcc_tokenizer_eos_id(const rcc_tokenizer_t *tok);
int rcc_tokenizer_pad_id(const rcc_tokenizer_t *tok);
int rcc_tokenizer_vocab_size(const rcc_tokenizer_t *tok);
