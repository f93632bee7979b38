/* The forms of the values rcc-dist writes into #SBATCH lines (--time, --mem, names), as
 * sbatch(1) reads them. Shared by the job parser (jobs/job_parse.c reports a bad `slurm:`
 * value at its file:line:col) and by `rcc-dist slurm` (a bad flag): header-only, so that
 * the job library needs no link to rcc_slurm. Each returns NULL when the value is fine,
 * else what it should look like, for the message. */
#pragma once
#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Reads one run of decimal digits at *s; returns how many there were. */
static inline size_t rcc_slurm_digits(const char **s) {
  size_t n = 0;
  while (isdigit((unsigned char)**s))
    (*s)++, n++;
  return n;
}

/* --time: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS, DAYS-HOURS:MINUTES,
 * DAYS-HOURS:MINUTES:SECONDS, or UNLIMITED / INFINITE. */
static inline const char *rcc_slurm_time_problem(const char *v) {
  static const char form[] = "a Slurm time limit: MINUTES, HH:MM:SS, D-HH, D-HH:MM:SS or UNLIMITED";
  if (!strcasecmp(v, "UNLIMITED") || !strcasecmp(v, "INFINITE")) return NULL;
  const char *s = v;
  if (!rcc_slurm_digits(&s)) return form;
  if (*s == '-') { /* the number read was the days */
    s++;
    if (!rcc_slurm_digits(&s)) return form;
  }
  for (int groups = 1; *s == ':'; groups++) {
    s++;
    if (groups == 3 || !rcc_slurm_digits(&s)) return form;
  }
  return *s ? form : NULL;
}

/* --mem: an integer with an optional unit K, M, G or T (megabytes without one). */
static inline const char *rcc_slurm_mem_problem(const char *v) {
  const char *s = v;
  if (!rcc_slurm_digits(&s) || (*s && (!strchr("KMGTkmgt", *s) || s[1])))
    return "a memory size per node: an integer with an optional unit K, M, G or T, like 64G";
  return NULL;
}

/* --partition, --account, --constraint: one word of printable characters. */
static inline const char *rcc_slurm_word_problem(const char *v) {
  for (const char *s = v; *s; s++)
    if (!isgraph((unsigned char)*s))
      return "one word without spaces or control characters, as sbatch reads it";
  return *v ? NULL : "not empty";
}

/* An extra #SBATCH line: an option ("--qos=high", "-q high") on one line. */
static inline const char *rcc_slurm_option_problem(const char *v) {
  if (v[0] != '-') return "an sbatch option starting with '-', like --qos=high";
  for (const char *s = v; *s; s++)
    if (iscntrl((unsigned char)*s)) return "an sbatch option on one line";
  return NULL;
}
