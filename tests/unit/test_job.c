/* Job files: SHA-256 against the FIPS 180-4 vectors; the example and every good fixture
 * load with their defaults filled; every bad fixture fails with RCC_ERR_ARG and the exact
 * file:line:col and message (plus the quoted source line and caret); many errors come in
 * one pass, capped at RCC_JOB_MAX_ERRORS; load -> to_yaml -> load gives an equal job;
 * model path checks; and `rcc-dist validate` exit codes and output. */
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/job.h"
#include "jobs/sha256.h"
#include "jobs/yaml_diag.h"
#include "runner/commands.h"
#include "tests/harness.h"

/* ---- helpers ------------------------------------------------------------------------ */

static const char *fixture(const char *name) {
  static char path[8][4096];
  static int slot = 0;
  slot = (slot + 1) % 8;
  snprintf(path[slot], sizeof path[slot], "%s/%s", rcc_source_path("tests/fixtures/jobs"), name);
  return path[slot];
}

static const char *scratch(const char *name) {
  static char path[8][4096];
  static int slot = 0;
  slot = (slot + 1) % 8;
  snprintf(path[slot], sizeof path[slot], "%s/%s", rcc_scratch_dir(), name);
  return path[slot];
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

/* Whole file as a NUL-terminated string (the caller frees it). */
static char *read_text(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = '\0';
  if (len) *len = (size_t)n;
  return buf;
}

static rcc_job_t *load_ok(const char *path) {
  rcc_job_t *job = NULL;
  rcc_status_t st = rcc_job_load(path, &job);
  if (st != RCC_OK) fail_msg("%s: %s\n%s", path, rcc_status_str(st), rcc_job_errors());
  assert_non_null(job);
  return job;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

/* Names of the files of tests/fixtures/jobs starting with `prefix`, sorted. */
static int list_fixtures(const char *prefix, char names[][64], int max) {
  DIR *d = opendir(rcc_source_path("tests/fixtures/jobs"));
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, prefix, strlen(prefix)) && strstr(e->d_name, ".yaml")) {
      assert_true(n < max && strlen(e->d_name) < 64);
      memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
    }
  closedir(d);
  qsort(names, (size_t)n, 64, compare_names);
  return n;
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* ---- SHA-256 ------------------------------------------------------------------------ */

static void assert_digest(const void *data, size_t n, const char *want) {
  uint8_t d[32];
  char hex[65];
  rcc_sha256(d, data, n);
  rcc_sha256_hex(hex, d);
  assert_string_equal(hex, want);
}

static void test_sha256_fips_vectors(void **state) {
  /* FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA2_Additional.pdf"). */
  assert_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  assert_digest(m448, strlen(m448),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const char *m896 =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
      "pqklmnopqrlmnopqrsmnopqrstnopqrstu";
  assert_digest(m896, strlen(m896),
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  /* One million 'a', fed in uneven pieces across block boundaries. */
  static char a[1000000];
  memset(a, 'a', sizeof a);
  rcc_sha256_t s;
  rcc_sha256_init(&s);
  size_t done = 0, piece = 1;
  while (done < sizeof a) {
    size_t take = piece < sizeof a - done ? piece : sizeof a - done;
    rcc_sha256_update(&s, a + done, take);
    done += take;
    piece = piece * 7 % 997 + 1;
  }
  uint8_t d[32];
  char hex[65];
  rcc_sha256_final(&s, d);
  rcc_sha256_hex(hex, d);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Byte-at-a-time updates equal one-shot digests for every length around the padding
 * boundaries (55, 56, 63, 64 bytes and their next block). */
static void test_sha256_incremental(void **state) {
  uint8_t msg[200];
  for (int i = 0; i < 200; i++)
    msg[i] = (uint8_t)(i * 31 + 7);
  for (size_t n = 0; n < sizeof msg; n++) {
    uint8_t one[32], inc[32];
    rcc_sha256(one, msg, n);
    rcc_sha256_t s;
    rcc_sha256_init(&s);
    for (size_t i = 0; i < n; i++)
      rcc_sha256_update(&s, msg + i, 1);
    rcc_sha256_final(&s, inc);
    assert_memory_equal(one, inc, 32);
  }
}

/* ---- diagnostics helpers ------------------------------------------------------------ */

static void test_edit_distance(void **state) {
  assert_int_equal(rcc_edit_distance("target_sparsty", "target_sparsity"), 1);
  assert_int_equal(rcc_edit_distance("shcedule", "schedule"), 1); /* swap */
  assert_int_equal(rcc_edit_distance("", "abc"), 3);
  assert_int_equal(rcc_edit_distance("kitten", "sitting"), 3);
  static const char *const keys[] = {"method", "target_sparsity", "schedule"};
  assert_string_equal(rcc_did_you_mean("target_sparsty", keys, 3), "target_sparsity");
  assert_string_equal(rcc_did_you_mean("methd", keys, 3), "method");
  assert_null(rcc_did_you_mean("lr", keys, 3));
  assert_null(rcc_did_you_mean("learning_rate", keys, 3));
}

/* ---- good jobs ---------------------------------------------------------------------- */

static void test_defaults(void **state) {
  rcc_job_t *job = load_ok(fixture("good_minimal.yaml"));
  assert_string_equal(job->model, "models/clip-fmnist");
  assert_int_equal(job->model_pos.line, 2);
  assert_int_equal(job->model_pos.col, 8);
  assert_string_equal(job->output, "runs/minimal");
  assert_string_equal(job->backend, "auto");
  assert_int_equal(job->threads, 0);
  assert_int_equal(job->seed, 0);
  assert_null(job->base_model);
  assert_string_equal(job->data.calibration, "fmnist:train");
  assert_int_equal(job->data.calibration_samples, 256);
  assert_string_equal(job->data.validation, "fmnist:test");
  assert_int_equal(job->data.validation_samples, 1000);
  assert_int_equal(job->data.batch_size, 64);
  assert_int_equal(job->num_include, 1);
  assert_string_equal(job->include[0], "*");
  assert_int_equal(job->num_exclude, 0);
  assert_int_equal(job->num_stages, 0);
  assert_true(job->validation.performance_threshold == 0.95);
  assert_true(job->validation.rollback_enabled);
  assert_int_equal(job->validation.on_fail, RCC_ON_FAIL_RETRY);
  assert_int_equal(job->validation.max_retries, 2);
  assert_int_equal(job->checkpoint_frequency, 1);
  rcc_job_free(job);

  /* Stage defaults: the seed job sets a few keys of each stage, the rest are defaults. */
  job = load_ok(fixture("good_seed.yaml"));
  assert_int_equal(job->num_stages, 3);
  const rcc_dare_config_t *d = &job->stages[0].config.dare;
  assert_int_equal(job->stages[0].kind, RCC_STAGE_DARE);
  assert_true(job->stages[0].enabled);
  assert_int_equal(job->stages[0].pos.line, 7);
  assert_int_equal(job->stages[0].pos.col, 7);
  assert_int_equal(d->method, RCC_DARE_METHOD_MAGNITUDE);
  assert_true(d->target_sparsity == 0.9);
  assert_int_equal(d->num_iterations, 10);
  assert_int_equal(d->schedule, RCC_SCHEDULE_COSINE);
  assert_int_equal(d->pattern_n, 0);
  assert_int_equal(d->pattern_m, 0);
  assert_int_equal(d->scope, RCC_SCOPE_LAYER);
  assert_false(d->rescale);
  assert_int_equal(d->block_size, 128);
  assert_true(d->damp_percent == 0.01);
  assert_int_equal(d->fine_tune_epochs, 5);
  const rcc_nullu_config_t *n = &job->stages[1].config.nullu;
  assert_int_equal(job->stages[1].kind, RCC_STAGE_NULLU);
  assert_int_equal(n->method, RCC_NULLU_METHOD_SVD);
  assert_true(n->energy_threshold == 0.95);
  assert_true(n->rank_reduction_ratio == 0.5);
  assert_int_equal(n->min_rank, 1);
  assert_true(n->damp_percent == 0.01);
  const rcc_alphaedit_config_t *a = &job->stages[2].config.alphaedit;
  assert_int_equal(job->stages[2].kind, RCC_STAGE_ALPHAEDIT);
  assert_int_equal(a->method, RCC_ALPHAEDIT_METHOD_CLOSED_FORM);
  assert_true(a->regularization == 0.001);
  assert_false(a->null_space);
  assert_true(a->null_space_energy == 0.99);
  assert_int_equal(a->importance_metric, RCC_IMPORTANCE_GRADIENT);
  assert_true(a->learning_rate == 0.001);
  assert_int_equal(a->num_epochs, 10);
  assert_int_equal(a->batch_size, 32);
  assert_true(a->kd_temperature == 2.0);
  assert_true(a->kd_weight == 0.5);
  assert_int_equal(job->checkpoint_frequency, 1);
  rcc_job_free(job);
}

static void test_example(void **state) {
  const char *path = rcc_source_path("examples/clip-fmnist.yaml");
  rcc_job_t *job = load_ok(path);
  assert_string_equal(job->model, "models/clip-fmnist");
  assert_string_equal(job->output, "runs/clip-fmnist");
  assert_string_equal(job->data.calibration, "fmnist:train");
  assert_int_equal(job->data.calibration_samples, 256);
  assert_string_equal(job->data.validation, "fmnist:test");
  assert_int_equal(job->data.validation_samples, 2000);
  assert_int_equal(job->num_stages, 3);
  assert_int_equal(job->stages[0].config.dare.method, RCC_DARE_METHOD_WANDA);
  assert_true(job->stages[0].config.dare.target_sparsity == 0.6);
  assert_int_equal(job->stages[0].config.dare.pattern_m, 0);
  assert_int_equal(job->stages[1].config.nullu.method, RCC_NULLU_METHOD_RESIDUAL);
  assert_true(job->stages[1].config.nullu.energy_threshold == 0.9);
  assert_true(job->stages[1].config.nullu.rank_reduction_ratio == 0.05);
  assert_int_equal(job->stages[2].config.alphaedit.method, RCC_ALPHAEDIT_METHOD_CLOSED_FORM);
  assert_true(job->stages[2].config.alphaedit.regularization == 1e-3);
  assert_true(job->validation.performance_threshold == 0.95);
  assert_int_equal(job->validation.on_fail, RCC_ON_FAIL_RETRY);
  assert_int_equal(job->validation.max_retries, 2);
  assert_int_equal(job->num_include, 2);
  assert_string_equal(job->include[0], "*.encoder.layers.*.mlp.*");
  /* The fingerprint is the SHA-256 of the file's bytes. */
  size_t len;
  char *text = read_text(path, &len);
  uint8_t d[32];
  rcc_sha256(d, text, len);
  assert_memory_equal(job->sha256, d, 32);
  char hex[65];
  rcc_sha256_hex(hex, d);
  assert_string_equal(job->sha256_hex, hex);
  free(text);
  rcc_job_free(job);
}

static void test_good_fixtures(void **state) {
  char names[32][64];
  int n = list_fixtures("good_", names, 32);
  assert_true(n >= 4);
  for (int i = 0; i < n; i++)
    rcc_job_free(load_ok(fixture(names[i])));

  rcc_job_t *job = load_ok(fixture("good_full.yaml"));
  assert_string_equal(job->model, "tests/fixtures/clip tiny");
  assert_string_equal(job->backend, "cuda:1");
  assert_int_equal(job->threads, 4);
  assert_true(job->seed == 1234567890123LL);
  assert_string_equal(job->base_model, "models/base");
  assert_int_equal(job->base_model_pos.line, 7);
  assert_int_equal(job->base_model_pos.col, 13);
  assert_string_equal(job->data.calibration, "folder:images/calib");
  assert_string_equal(job->data.validation, "csv:pairs.csv");
  assert_int_equal(job->num_exclude, 2);
  assert_string_equal(job->exclude[1], "*.out_proj");
  assert_int_equal(job->num_stages, 4);
  assert_false(job->stages[0].enabled); /* "no" */
  assert_int_equal(job->stages[0].config.dare.method, RCC_DARE_METHOD_DARE);
  assert_int_equal(job->stages[0].config.dare.pattern_n, 2);
  assert_int_equal(job->stages[0].config.dare.pattern_m, 4);
  assert_true(job->stages[0].config.dare.rescale); /* "on" */
  assert_int_equal(job->stages[1].config.dare.scope, RCC_SCOPE_GLOBAL);
  assert_int_equal(job->stages[1].config.dare.pattern_n, 4);
  assert_int_equal(job->stages[1].config.dare.pattern_m, 8);
  assert_true(job->stages[2].config.nullu.energy_threshold == 1.0); /* an int for a number */
  const rcc_alphaedit_config_t *ae = &job->stages[3].config.alphaedit;
  assert_true(ae->learning_rate == 3e-4);
  /* alpha trains even when the list leaves it out */
  assert_int_equal(ae->trainable, RCC_TRAIN_ALPHA | RCC_TRAIN_LOWRANK | RCC_TRAIN_SPARSE_VALUES);
  assert_int_equal(ae->embedding_loss, RCC_EMBEDDING_LOSS_MSE);
  assert_int_equal(ae->gradient_accumulation, 2);
  assert_true(ae->warmup_ratio == 0.2 && ae->clip_norm == 0.5 && ae->weight_decay == 0.05);
  assert_int_equal(ae->patience, 0);
  assert_int_equal(ae->train_samples, 300);
  assert_int_equal(job->validation.on_fail, RCC_ON_FAIL_ABORT);
  assert_false(job->validation.rollback_enabled); /* "off" */
  assert_int_equal(job->checkpoint_frequency, 0);
  rcc_job_free(job);
}

static void test_enum_names(void **state) {
  assert_string_equal(rcc_stage_kind_name(RCC_STAGE_ALPHAEDIT), "alphaedit");
  assert_string_equal(rcc_dare_method_name(RCC_DARE_METHOD_SPARSEGPT), "sparsegpt");
  assert_string_equal(rcc_schedule_name(RCC_SCHEDULE_CUBIC), "cubic");
  assert_string_equal(rcc_scope_name(RCC_SCOPE_GLOBAL), "global");
  assert_string_equal(rcc_nullu_method_name(RCC_NULLU_METHOD_WHITENED), "whitened");
  assert_string_equal(rcc_alphaedit_method_name(RCC_ALPHAEDIT_METHOD_CLOSED_FORM), "closed_form");
  assert_string_equal(rcc_importance_name(RCC_IMPORTANCE_GRADIENT), "gradient");
  assert_string_equal(rcc_on_fail_name(RCC_ON_FAIL_ROLLBACK), "rollback");
  assert_string_equal(rcc_dare_method_name((rcc_dare_method_t)42), "?");
  rcc_stage_t st = {.kind = RCC_STAGE_NULLU, .config.nullu.method = RCC_NULLU_METHOD_RESIDUAL};
  assert_string_equal(rcc_stage_method_name(&st), "residual");
}

/* ---- bad jobs ----------------------------------------------------------------------- */

typedef struct {
  const char *file;
  int line, col;
  const char *message;
} expected_error_t;

/* One fixture per error class; the message is the whole text after "error: ". */
static const expected_error_t bad_cases[] = {
    {"bad_unknown_key.yaml", 8, 9,
     "unknown key 'target_sparsty' (did you mean 'target_sparsity'?)"},
    {"bad_wrong_type.yaml", 8, 26,
     "'target_sparsity' must be a number, got the quoted string \"0.5\" (write numbers without "
     "quotes)"},
    {"bad_sparsity_range.yaml", 7, 52, "'target_sparsity' must be in [0, 1), got 1.0"},
    {"bad_energy_zero.yaml", 9, 27, "'energy_threshold' must be in (0, 1], got 0"},
    {"bad_pattern.yaml", 8, 18, "'pattern' N:M needs 0 < N <= M, got '4:2'"},
    {"bad_enum.yaml", 8, 19,
     "'schedule' must be one of linear, cosine, cubic; got 'cosin' (did you mean 'cosine'?)"},
    {"bad_duplicate_key.yaml", 6, 1, "duplicate key 'seed' (first given at line 4)"},
    {"bad_trainable.yaml", 9, 28,
     "'trainable' items must be alpha, lowrank, sparse_values, bias, layernorm; got 'biases' "
     "(did you mean 'bias'?)"},
    {"bad_foreign_key.yaml", 9, 9,
     "key 'energy_threshold' belongs to nullu stages, not to this dare stage"},
    {"bad_syntax.yaml", 6, 3,
     "YAML syntax: did not find expected ',' or ']' (while parsing a flow sequence at line 5)"},
    {"bad_missing_model.yaml", 2, 1,
     "missing required key 'model' (the Hugging Face CLIPModel directory to compress)"},
    {"bad_tab.yaml", 5, 1,
     "YAML syntax: found character that cannot start any token (while scanning for the next "
     "token at line 5); YAML indents with spaces, not tabs"},
    {"bad_empty.yaml", 1, 1, "the job file is empty: it needs at least 'model:' and 'output:'"},
    {"bad_stages_not_list.yaml", 6, 5,
     "'stages' must be a list of stages (- name: dare|nullu|alphaedit), or [] to only "
     "evaluate, got a mapping"},
    {"bad_dare_no_base.yaml", 8, 17,
     "method 'dare' drops the delta from a base model: it needs top-level 'base_model:' (the "
     "model this one was fine-tuned from)"},
    {"bad_checkpoint_twice.yaml", 8, 5,
     "checkpoint_frequency given twice (also at line 5): write it once, in 'cascade' or in "
     "'cascade.validation'"},
};

static void test_bad_fixtures(void **state) {
  size_t ncases = sizeof bad_cases / sizeof bad_cases[0];
  for (size_t i = 0; i < ncases; i++) {
    const expected_error_t *e = &bad_cases[i];
    const char *path = fixture(e->file);
    rcc_job_t *job = (rcc_job_t *)1;
    rcc_status_t st = rcc_job_load(path, &job);
    if (st != RCC_ERR_ARG)
      fail_msg("%s: got %s, want invalid argument", e->file, rcc_status_str(st));
    assert_null(job);
    char want[1024];
    snprintf(want, sizeof want, "%s:%d:%d: error: %s\n", path, e->line, e->col, e->message);
    const char *got = rcc_job_errors();
    if (strncmp(got, want, strlen(want)) != 0)
      fail_msg("%s:\nwant: %sgot:  %s", e->file, want, got);
    assert_int_equal(count(got, ": error: "), 1);
    /* The short message says the same (without the final newline). */
    assert_int_equal(strncmp(rcc_last_error(), want, strlen(want) - 1), 0);
    /* The source line follows with its number, then a caret at the column. */
    char gutter[32];
    snprintf(gutter, sizeof gutter, "\n %4d | ", e->line);
    if (strcmp(e->file, "bad_empty.yaml") != 0) {
      assert_non_null(strstr(got, gutter));
      assert_non_null(strstr(got, "      | "));
      assert_non_null(strchr(got, '^'));
    }
  }
  /* Every bad fixture has its expectation above. */
  char names[32][64];
  int n = list_fixtures("bad_", names, 32);
  for (int i = 0; i < n; i++) {
    bool known = !strcmp(names[i], "bad_many.yaml");
    for (size_t k = 0; k < ncases; k++)
      known |= !strcmp(names[i], bad_cases[k].file);
    if (!known) fail_msg("%s has no expected error in test_job.c", names[i]);
  }
}

/* The caret sits under the column, characters counted, tabs kept. */
static void test_caret(void **state) {
  rcc_job_t *job;
  assert_int_equal(rcc_job_load(fixture("bad_unknown_key.yaml"), &job), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_job_errors(), "    8 |         target_sparsty: 0.9\n"
                                           "      |         ^~~~~~~~~~~~~~\n"));
  const char *text = "model: m\noutput: o\n\"é\": 1\n";
  assert_int_equal(rcc_job_parse("u.yaml", text, strlen(text), &job), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_job_errors(), "u.yaml:3:1: error: unknown key 'é'\n"));
  assert_non_null(strstr(rcc_job_errors(), "      | ^~~\n"));
  text = "model: m\noutput: o\nseed:\t\tx\n";
  assert_int_equal(rcc_job_parse("t.yaml", text, strlen(text), &job), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_job_errors(), "t.yaml:3:8: error: 'seed' must be an integer, got 'x'\n"
                                           "    3 | seed:\t\tx\n"
                                           "      |      \t\t^\n"));
}

static void test_many_errors_in_one_pass(void **state) {
  const char *path = fixture("bad_many.yaml");
  rcc_job_t *job;
  assert_int_equal(rcc_job_load(path, &job), RCC_ERR_ARG);
  assert_null(job);
  static const struct {
    int line, col;
    const char *start;
  } want[] = {
      {3, 1, "unknown key 'outptu' (did you mean 'output'?)"},
      {4, 10, "'threads' must be an integer >= 0, got -1"},
      {5, 10, "'backend' must be auto, cpu, cuda or cuda:N; got 'gpu'"},
      {7, 24, "'calibration_samples' must be an integer >= 1, got 0"},
      {8, 15, "'validation' must be a dataset"},
      {11, 13, "'name' must be one of dare, nullu, alphaedit; got 'prune'"},
      {14, 7, "unknown key 'method' (nullu settings go under 'config:')"},
      {17, 20, "'kd_weight' must be in [0, 1], got 1.5"},
      {18, 9, "unknown key 'decay'\n"},
      {20, 14, "'on_fail' must be one of retry, rollback, abort; got 'retry-later'"},
      {21, 23, "'rollback_enabled' must be true or false, got 'maybe'"},
      {2, 1, "missing required key 'output'"},
  };
  const char *got = rcc_job_errors();
  size_t nwant = sizeof want / sizeof want[0];
  assert_int_equal(count(got, ": error: "), (int)nwant);
  const char *p = got;
  for (size_t i = 0; i < nwant; i++) {
    char head[512];
    snprintf(head, sizeof head, "%s:%d:%d: error: %s", path, want[i].line, want[i].col,
             want[i].start);
    const char *at = strstr(p, head);
    if (!at) fail_msg("missing, in order: %s\nin:\n%s", head, got);
    p = at + 1;
  }
}

static void test_error_cap(void **state) {
  /* 30 unknown keys: 20 reported, then one note. */
  char text[4096] = "model: m\noutput: o\n";
  for (int i = 0; i < 30; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text), "bogus_key_%02d: 1\n", i);
  rcc_job_t *job;
  assert_int_equal(rcc_job_parse("cap.yaml", text, strlen(text), &job), RCC_ERR_ARG);
  const char *all = rcc_job_errors();
  assert_int_equal(count(all, ": error: "), RCC_JOB_MAX_ERRORS);
  assert_non_null(strstr(all, "cap.yaml:22:1: error: unknown key 'bogus_key_19'"));
  assert_null(strstr(all, "bogus_key_20'"));
  assert_non_null(strstr(all, "cap.yaml: note: stopped reporting after 20 errors"));
  /* The 2 KB message keeps whole errors and says where the rest is. */
  const char *brief = rcc_last_error();
  assert_true(strlen(brief) < 2048);
  assert_non_null(strstr(brief, "cap.yaml:3:1: error: unknown key 'bogus_key_00'"));
  assert_non_null(strstr(brief, "... and more (30 errors in all: `rcc-dist validate cap.yaml`"));
}

static void test_io_errors(void **state) {
  rcc_job_t *job;
  const char *missing = scratch("no-such-job.yaml");
  assert_int_equal(rcc_job_load(missing, &job), RCC_ERR_IO);
  assert_null(job);
  assert_non_null(strstr(rcc_last_error(), missing));
  assert_non_null(strstr(rcc_job_errors(), "cannot open job file"));
  /* A NUL byte: not YAML text. */
  const char *binary = scratch("binary.yaml");
  FILE *f = fopen(binary, "wb");
  assert_non_null(f);
  fwrite("model: m\n\0\x01", 1, 11, f);
  fclose(f);
  assert_int_equal(rcc_job_load(binary, &job), RCC_ERR_FORMAT);
  assert_non_null(strstr(rcc_job_errors(), "binary.yaml:2:1: error: not a YAML text file"));
  /* Success clears the previous failure's text. */
  rcc_job_free(load_ok(fixture("good_minimal.yaml")));
  assert_string_equal(rcc_job_errors(), "");
}

/* ---- round trip --------------------------------------------------------------------- */

static void assert_same_strings(char **a, int na, char **b, int nb) {
  assert_int_equal(na, nb);
  for (int i = 0; i < na; i++)
    assert_string_equal(a[i], b[i]);
}

/* Every setting equal; path, fingerprint and source positions may differ. */
static void assert_same_job(const rcc_job_t *a, const rcc_job_t *b) {
  assert_string_equal(a->model, b->model);
  assert_string_equal(a->output, b->output);
  assert_string_equal(a->backend, b->backend);
  assert_int_equal(a->threads, b->threads);
  assert_true(a->seed == b->seed);
  assert_true((a->base_model == NULL) == (b->base_model == NULL));
  if (a->base_model) assert_string_equal(a->base_model, b->base_model);
  assert_string_equal(a->data.calibration, b->data.calibration);
  assert_int_equal(a->data.calibration_samples, b->data.calibration_samples);
  assert_string_equal(a->data.validation, b->data.validation);
  assert_int_equal(a->data.validation_samples, b->data.validation_samples);
  assert_int_equal(a->data.batch_size, b->data.batch_size);
  assert_same_strings(a->include, a->num_include, b->include, b->num_include);
  assert_same_strings(a->exclude, a->num_exclude, b->exclude, b->num_exclude);
  assert_int_equal(a->num_stages, b->num_stages);
  for (int i = 0; i < a->num_stages; i++) {
    const rcc_stage_t *x = &a->stages[i], *y = &b->stages[i];
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->enabled, y->enabled);
    if (x->kind == RCC_STAGE_DARE) {
      const rcc_dare_config_t *p = &x->config.dare, *q = &y->config.dare;
      assert_int_equal(p->method, q->method);
      assert_true(p->target_sparsity == q->target_sparsity);
      assert_int_equal(p->num_iterations, q->num_iterations);
      assert_int_equal(p->schedule, q->schedule);
      assert_int_equal(p->pattern_n, q->pattern_n);
      assert_int_equal(p->pattern_m, q->pattern_m);
      assert_int_equal(p->scope, q->scope);
      assert_int_equal(p->rescale, q->rescale);
      assert_int_equal(p->block_size, q->block_size);
      assert_true(p->damp_percent == q->damp_percent);
      assert_int_equal(p->fine_tune_epochs, q->fine_tune_epochs);
    } else if (x->kind == RCC_STAGE_NULLU) {
      const rcc_nullu_config_t *p = &x->config.nullu, *q = &y->config.nullu;
      assert_int_equal(p->method, q->method);
      assert_true(p->energy_threshold == q->energy_threshold);
      assert_true(p->rank_reduction_ratio == q->rank_reduction_ratio);
      assert_int_equal(p->min_rank, q->min_rank);
      assert_true(p->damp_percent == q->damp_percent);
    } else {
      const rcc_alphaedit_config_t *p = &x->config.alphaedit, *q = &y->config.alphaedit;
      assert_int_equal(p->method, q->method);
      assert_true(p->regularization == q->regularization);
      assert_int_equal(p->null_space, q->null_space);
      assert_true(p->null_space_energy == q->null_space_energy);
      assert_int_equal(p->importance_metric, q->importance_metric);
      assert_true(p->learning_rate == q->learning_rate);
      assert_int_equal(p->num_epochs, q->num_epochs);
      assert_int_equal(p->batch_size, q->batch_size);
      assert_true(p->kd_temperature == q->kd_temperature);
      assert_true(p->kd_weight == q->kd_weight);
    }
  }
  assert_true(a->validation.performance_threshold == b->validation.performance_threshold);
  assert_int_equal(a->validation.rollback_enabled, b->validation.rollback_enabled);
  assert_int_equal(a->validation.on_fail, b->validation.on_fail);
  assert_int_equal(a->validation.max_retries, b->validation.max_retries);
  assert_int_equal(a->checkpoint_frequency, b->checkpoint_frequency);
}

static void round_trip(const rcc_job_t *job, const char *out_name) {
  const char *out = scratch(out_name);
  FILE *f = fopen(out, "w");
  assert_non_null(f);
  assert_int_equal(rcc_job_to_yaml(job, f), RCC_OK);
  assert_int_equal(fclose(f), 0);
  rcc_job_t *again = load_ok(out);
  assert_same_job(job, again);
  rcc_job_free(again);
}

static void test_round_trip(void **state) {
  char names[32][64];
  int n = list_fixtures("good_", names, 32);
  for (int i = 0; i < n; i++) {
    rcc_job_t *job = load_ok(fixture(names[i]));
    round_trip(job, names[i]);
    rcc_job_free(job);
  }
  rcc_job_t *job = load_ok(rcc_source_path("examples/clip-fmnist.yaml"));
  round_trip(job, "example.yaml");
  rcc_job_free(job);
  /* Strings that need quoting and escapes, numbers that need all 17 digits. */
  const char *text =
      "model: 'dir \"with\" quotes\\and: colons'\noutput: \"tab\\there #no comment\"\n"
      "base_model: 'yes'\nseed: 9223372036854775807\n"
      "cascade:\n  stages:\n    - name: dare\n      config: {target_sparsity: "
      "0.1234567890123456789, damp_percent: 1e-300}\n";
  assert_int_equal(rcc_job_parse("strings.yaml", text, strlen(text), &job), RCC_OK);
  assert_string_equal(job->model, "dir \"with\" quotes\\and: colons");
  assert_string_equal(job->output, "tab\there #no comment");
  assert_string_equal(job->base_model, "yes");
  round_trip(job, "strings-out.yaml");
  rcc_job_free(job);
}

/* Every `trainable:` name sets its bit, alpha whether listed or not, and the list survives
 * a round trip through rcc_job_to_yaml. */
static void test_trainable(void **state) {
  static const struct {
    const char *list;
    unsigned bits;
  } cases[] = {
      {"[bias]", RCC_TRAIN_ALPHA | RCC_TRAIN_BIAS},
      {"[layernorm]", RCC_TRAIN_ALPHA | RCC_TRAIN_LAYERNORM},
      {"[alpha, bias, layernorm, lowrank, sparse_values]",
       RCC_TRAIN_ALPHA | RCC_TRAIN_BIAS | RCC_TRAIN_LAYERNORM | RCC_TRAIN_LOWRANK |
           RCC_TRAIN_SPARSE_VALUES},
      {"[]", RCC_TRAIN_ALPHA},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "model: m\noutput: o\ncascade:\n  stages:\n    - name: alphaedit\n"
             "      config: {method: distill, trainable: %s}\n",
             cases[i].list);
    rcc_job_t *job = NULL;
    if (rcc_job_parse("trainable.yaml", text, strlen(text), &job) != RCC_OK)
      fail_msg("%s: %s", cases[i].list, rcc_job_errors());
    assert_int_equal(job->stages[0].config.alphaedit.trainable, cases[i].bits);
    round_trip(job, "trainable-out.yaml");
    rcc_job_free(job);
  }
}

/* ---- paths and the validate command ------------------------------------------------- */

static void make_model_dir(const char *dir) {
  assert_int_equal(mkdir(dir, 0755), 0);
  char cfg[4200];
  snprintf(cfg, sizeof cfg, "%s/config.json", dir);
  write_text(cfg, "{}\n");
}

static void test_check_paths(void **state) {
  const char *model = scratch("model-ok");
  make_model_dir(model);
  assert_int_equal(mkdir(scratch("model-empty"), 0755), 0);
  char text[8192];
  const char *job_path = scratch("paths.yaml");
  snprintf(text, sizeof text, "output: runs/x\nmodel: %s\n", model);
  write_text(job_path, text);
  rcc_job_t *job = load_ok(job_path);
  assert_int_equal(rcc_job_check_paths(job), RCC_OK);
  rcc_job_free(job);

  snprintf(text, sizeof text, "output: runs/x\nmodel: %s\nbase_model: %s\n", scratch("nope"),
           scratch("model-empty"));
  write_text(job_path, text);
  job = load_ok(job_path);
  assert_int_equal(rcc_job_check_paths(job), RCC_ERR_ARG);
  char want[8192];
  snprintf(want, sizeof want, "%s:2:8: error: model directory '%s' does not exist\n", job_path,
           scratch("nope"));
  assert_non_null(strstr(rcc_job_errors(), want));
  snprintf(want, sizeof want,
           "%s:3:13: error: base_model directory '%s' has no config.json (expected a Hugging "
           "Face model directory)\n",
           job_path, scratch("model-empty"));
  assert_non_null(strstr(rcc_job_errors(), want));
  assert_non_null(strstr(rcc_job_errors(), "    2 | model: "));
  rcc_job_free(job);
}

/* Runs rcc_cmd_validate with stdout and stderr sent to files; returns its exit status. */
static int run_validate(int argc, char **argv, char **out, char **err) {
  const char *out_path = scratch("validate.out"), *err_path = scratch("validate.err");
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
  dup2(fo, 1);
  dup2(fe, 2);
  int rc = rcc_cmd_validate(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(fo);
  close(fe);
  close(saved_out);
  close(saved_err);
  *out = read_text(out_path, NULL);
  *err = read_text(err_path, NULL);
  return rc;
}

static void test_validate_command(void **state) {
  const char *model = scratch("model-validate");
  make_model_dir(model);
  const char *job_path = scratch("validate.yaml");
  char text[8192];
  snprintf(text, sizeof text,
           "model: %s\noutput: runs/v\ncascade:\n  stages:\n"
           "    - {name: dare, config: {method: sparsegpt}}\n"
           "    - {name: nullu, config: {method: whitened}}\n"
           "    - {name: alphaedit, enabled: false}\n",
           model);
  write_text(job_path, text);
  char *out, *err;
  char *ok_args[] = {"validate", (char *)job_path};
  assert_int_equal(run_validate(2, ok_args, &out, &err), 0);
  char want[4200];
  snprintf(want, sizeof want,
           "%s: ok (3 stages: dare/sparsegpt, nullu/whitened, alphaedit/closed_form (disabled))\n",
           job_path);
  assert_string_equal(out, want);
  assert_string_equal(err, "");
  free(out);
  free(err);

  /* One bad file among good ones: exit 1, the good one still reported. */
  char *bad_args[] = {"validate", (char *)fixture("bad_many.yaml"), (char *)job_path};
  assert_int_equal(run_validate(3, bad_args, &out, &err), 1);
  assert_int_equal(count(err, ": error: "), 12);
  assert_non_null(strstr(out, ": ok (3 stages"));
  free(out);
  free(err);

  char *missing_args[] = {"validate", (char *)scratch("missing.yaml")};
  assert_int_equal(run_validate(2, missing_args, &out, &err), 1);
  assert_non_null(strstr(err, scratch("missing.yaml")));
  free(out);
  free(err);

  char *usage_args[] = {"validate"};
  assert_int_equal(run_validate(1, usage_args, &out, &err), 2);
  assert_non_null(strstr(err, "usage: rcc-dist validate"));
  free(out);
  free(err);
  char *flag_args[] = {"validate", "--bogus", (char *)job_path};
  assert_int_equal(run_validate(3, flag_args, &out, &err), 2);
  free(out);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_fips_vectors),
      cmocka_unit_test(test_sha256_incremental),
      cmocka_unit_test(test_edit_distance),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_good_fixtures),
      cmocka_unit_test(test_enum_names),
      cmocka_unit_test(test_trainable),
      cmocka_unit_test(test_bad_fixtures),
      cmocka_unit_test(test_caret),
      cmocka_unit_test(test_many_errors_in_one_pass),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_io_errors),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_check_paths),
      cmocka_unit_test(test_validate_command),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
