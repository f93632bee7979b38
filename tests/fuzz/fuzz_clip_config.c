/* Fuzz target: a Hugging Face CLIP config.json (model/clip_config.c, cJSON underneath) on
 * arbitrary text. A config that parses must hold the sizes the model code relies on. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "model/clip.h"

static void check_tower(const rcc_clip_tower_config_t *t, const char *which) {
  if (t->hidden_size <= 0 || t->num_heads <= 0 || t->hidden_size % t->num_heads != 0 ||
      t->intermediate_size <= 0 || t->num_layers < 0 || !(t->layer_norm_eps > 0.0f)) {
    fprintf(stderr, "fuzz_clip_config: %s accepted with bad sizes\n", which);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_cstr(data, size);
  rcc_clip_config_t c;
  if (rcc_clip_config_parse(text, "fuzz/config.json", &c) == RCC_OK) {
    check_tower(&c.text, "text_config");
    check_tower(&c.vision, "vision_config");
    if (c.vision.patch_size <= 0 || c.vision.image_size < c.vision.patch_size ||
        c.projection_dim <= 0) {
      fprintf(stderr, "fuzz_clip_config: vision sizes or projection_dim accepted out of range\n");
      abort();
    }
  }
  free(text);
  return 0;
}
