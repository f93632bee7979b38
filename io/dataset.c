/* Datasets named by a spec string: Fashion-MNIST from IDX files, a folder of class
 * sub-folders, or a CSV of image-caption pairs. Folder and CSV datasets hold paths and
 * decode an image only when asked; Fashion-MNIST is held in memory (47 MB at most). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset.h"

#define SPEC_FORMS "fmnist:test, fmnist:train, folder:DIR, csv:FILE"
#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fmnist_classes[10] = {
    "t-shirt or top", "trouser", "pullover", "dress", "coat",
    "sandal",         "shirt",   "sneaker",  "bag",   "ankle boot"};

struct rcc_dataset {
  int n;
  int num_classes;
  char **class_names; /* (num_classes) */
  int *labels;        /* (n), NULL for caption datasets */
  char **captions;    /* (n), NULL for class datasets */
  char **paths;       /* (n) image files, NULL for Fashion-MNIST */
  rcc_idx_t images;   /* Fashion-MNIST: (n, height, width) */
};

/* A growable list of owned strings. */
typedef struct {
  char **items;
  int n, cap;
} strlist_t;

static void strlist_free(strlist_t *l) {
  for (int i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
  *l = (strlist_t){0};
}

/* Takes ownership of s (frees it on failure). */
static rcc_status_t strlist_push(strlist_t *l, char *s) {
  if (s && l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    char **items = realloc(l->items, sizeof(char *) * (size_t)cap);
    if (!items) {
      free(s);
      s = NULL;
    } else {
      l->items = items;
      l->cap = cap;
    }
  }
  if (!s) return rcc_fail(RCC_ERR_NOMEM, "dataset: out of memory");
  l->items[l->n++] = s;
  return RCC_OK;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s/%s", dir, name);
  return s;
}

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static rcc_status_t dataset_new(rcc_dataset_t **out) {
  *out = calloc(1, sizeof **out);
  return *out ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "dataset: out of memory");
}

void rcc_dataset_free(rcc_dataset_t *ds) {
  if (!ds) return;
  for (int c = 0; c < ds->num_classes; c++)
    free(ds->class_names[c]);
  free(ds->class_names);
  for (int i = 0; i < ds->n; i++) {
    if (ds->captions) free(ds->captions[i]);
    if (ds->paths) free(ds->paths[i]);
  }
  free(ds->captions);
  free(ds->paths);
  free(ds->labels);
  rcc_idx_free(&ds->images);
  free(ds);
}

/* ---- fmnist:test / fmnist:train ---------------------------------------------------- */

/* dir/name.gz, or dir/name when only the uncompressed file is there. */
static char *fmnist_file(const char *dir, const char *name) {
  char *gz = malloc(strlen(name) + 4);
  if (!gz) return NULL;
  snprintf(gz, strlen(name) + 4, "%s.gz", name);
  char *path = join_path(dir, gz);
  free(gz);
  if (path && !is_file(path)) {
    char *plain = join_path(dir, name);
    if (plain && is_file(plain)) {
      free(path);
      return plain;
    }
    free(plain);
  }
  return path;
}

static rcc_status_t open_fmnist(const char *split, rcc_dataset_t *ds) {
  const char *dir = getenv("RCC_FMNIST_DIR");
  if (!dir || !*dir) dir = FMNIST_DEFAULT_DIR;
  const char *prefix = strcmp(split, "test") == 0 ? "t10k" : "train";
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
  char *images_path = fmnist_file(dir, name);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
  char *labels_path = fmnist_file(dir, name);
  rcc_idx_t labels = {0};
  rcc_status_t st = RCC_OK;
  if (!images_path || !labels_path) {
    st = rcc_fail(RCC_ERR_NOMEM, "dataset fmnist:%s: out of memory", split);
    goto done;
  }
  st = rcc_idx_load(images_path, &ds->images);
  if (st == RCC_OK) st = rcc_idx_load(labels_path, &labels);
  if (st != RCC_OK) {
    rcc_fail_context(st,
                     "dataset fmnist:%s (set RCC_FMNIST_DIR or install Debian's "
                     "dataset-fashion-mnist)",
                     split);
    goto done;
  }
  if (ds->images.ndim != 3) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: expected 3 dimensions (images, rows, columns), found %d",
                  images_path, ds->images.ndim);
    goto done;
  }
  if (labels.ndim != 1 || labels.dims[0] != ds->images.dims[0]) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: expected %d labels in 1 dimension to match %s", labels_path,
                  ds->images.dims[0], images_path);
    goto done;
  }
  ds->n = labels.dims[0];
  ds->labels = malloc(sizeof(int) * (size_t)ds->n);
  ds->class_names = calloc(10, sizeof(char *));
  if (!ds->labels || !ds->class_names) {
    st = rcc_fail(RCC_ERR_NOMEM, "dataset fmnist:%s: out of memory", split);
    goto done;
  }
  for (int i = 0; i < ds->n; i++) {
    if (labels.data[i] >= 10) {
      st = rcc_fail(RCC_ERR_FORMAT, "%s: label %d of record %d is not a class 0..9", labels_path,
                    labels.data[i], i);
      goto done;
    }
    ds->labels[i] = labels.data[i];
  }
  for (int c = 0; c < 10; c++) {
    ds->class_names[ds->num_classes] = strdup(fmnist_classes[c]);
    if (!ds->class_names[ds->num_classes]) {
      st = rcc_fail(RCC_ERR_NOMEM, "dataset fmnist:%s: out of memory", split);
      goto done;
    }
    ds->num_classes++;
  }
done:
  rcc_idx_free(&labels);
  free(images_path);
  free(labels_path);
  return st;
}

/* ---- folder:DIR --------------------------------------------------------------------- */

static bool has_image_extension(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return false;
  char ext[8] = {0};
  for (size_t i = 0; i + 1 < sizeof ext && dot[i + 1]; i++)
    ext[i] = (char)tolower((unsigned char)dot[i + 1]);
  return strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0;
}

/* Sorted names of dir's entries that are directories (want_dirs) or image files; hidden
 * entries (".name") are skipped. */
static rcc_status_t list_sorted(const char *dir, bool want_dirs, strlist_t *out) {
  *out = (strlist_t){0};
  DIR *d = opendir(dir);
  if (!d) return rcc_fail(RCC_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
  rcc_status_t st = RCC_OK;
  struct dirent *e;
  while (st == RCC_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char *full = join_path(dir, e->d_name);
    if (!full) {
      st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", dir);
      break;
    }
    bool keep = want_dirs ? is_dir(full) : has_image_extension(e->d_name) && is_file(full);
    free(full);
    if (keep) st = strlist_push(out, strdup(e->d_name));
  }
  closedir(d);
  if (st != RCC_OK) {
    strlist_free(out);
    return st;
  }
  if (out->n) qsort(out->items, (size_t)out->n, sizeof(char *), compare_names);
  return RCC_OK;
}

static rcc_status_t open_folder(const char *dir, rcc_dataset_t *ds) {
  strlist_t classes, paths = {0};
  int *labels = NULL, nlabels = 0;
  RCC_TRY(list_sorted(dir, true, &classes));
  rcc_status_t st = RCC_OK;
  if (classes.n == 0)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: no class sub-folders (expected DIR/<class>/<image>)", dir);
  for (int c = 0; c < classes.n && st == RCC_OK; c++) {
    char *class_dir = join_path(dir, classes.items[c]);
    strlist_t files = {0};
    st = class_dir ? list_sorted(class_dir, false, &files)
                   : rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", dir);
    if (st == RCC_OK && files.n == 0)
      st = rcc_fail(RCC_ERR_FORMAT, "%s: class folder has no .png, .jpg or .jpeg files", class_dir);
    if (st == RCC_OK) {
      int *grown = realloc(labels, sizeof(int) * (size_t)(nlabels + files.n));
      if (!grown)
        st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", dir);
      else
        labels = grown;
    }
    for (int i = 0; i < files.n && st == RCC_OK; i++) {
      st = strlist_push(&paths, join_path(class_dir, files.items[i]));
      if (st == RCC_OK) labels[nlabels++] = c;
    }
    strlist_free(&files);
    free(class_dir);
  }
  if (st != RCC_OK) {
    strlist_free(&classes);
    strlist_free(&paths);
    free(labels);
    return st;
  }
  /* Class names as people write them: "ankle_boot" -> "ankle boot". */
  for (int c = 0; c < classes.n; c++)
    for (char *p = classes.items[c]; *p; p++)
      if (*p == '_') *p = ' ';
  ds->num_classes = classes.n;
  ds->class_names = classes.items;
  ds->n = paths.n;
  ds->paths = paths.items;
  ds->labels = labels;
  return RCC_OK;
}

/* ---- csv:FILE ----------------------------------------------------------------------- */

/* Parses a field that starts with a double quote at *p ("" inside is one quote); on
 * success *p points past the closing quote and the unquoted text is returned. */
static char *parse_quoted(const char **p) {
  const char *s = *p + 1;
  char *out = malloc(strlen(s) + 1);
  if (!out) return NULL;
  size_t n = 0;
  for (;;) {
    if (*s == '\0') {
      free(out);
      *p = NULL;
      return NULL;
    }
    if (*s == '"') {
      if (s[1] != '"') break;
      s++;
    }
    out[n++] = *s++;
  }
  out[n] = '\0';
  *p = s + 1;
  return out;
}

/* One line "path,caption" into *path and *caption (owned); errors name file:line. */
static rcc_status_t parse_csv_line(const char *file, int line, const char *text, char **path,
                                   char **caption) {
  *path = *caption = NULL;
  const char *p = text;
  if (*p == '"') {
    *path = parse_quoted(&p);
    if (!*path && !p)
      return rcc_fail(RCC_ERR_FORMAT, "%s:%d: unterminated quote in the image path", file, line);
  } else {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    *path = strndup(p, n);
    p += n;
  }
  if (!*path) return rcc_fail(RCC_ERR_NOMEM, "%s:%d: out of memory", file, line);
  if (*p != ',') {
    free(*path);
    return rcc_fail(RCC_ERR_FORMAT, "%s:%d: expected 'image_path,caption'", file, line);
  }
  p++;
  if (**path == '\0') {
    free(*path);
    return rcc_fail(RCC_ERR_FORMAT, "%s:%d: empty image path", file, line);
  }
  if (*p == '"') {
    *caption = parse_quoted(&p);
    if (!*caption && !p) {
      free(*path);
      return rcc_fail(RCC_ERR_FORMAT, "%s:%d: unterminated quote in the caption", file, line);
    }
    if (*caption && *p != '\0') {
      free(*path);
      free(*caption);
      return rcc_fail(RCC_ERR_FORMAT, "%s:%d: text after the quoted caption", file, line);
    }
  } else {
    /* An unquoted caption is the rest of the line, commas included. */
    *caption = strdup(p);
  }
  if (!*caption) {
    free(*path);
    return rcc_fail(RCC_ERR_NOMEM, "%s:%d: out of memory", file, line);
  }
  return RCC_OK;
}

static rcc_status_t open_csv(const char *file, rcc_dataset_t *ds) {
  FILE *f = fopen(file, "r");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
  /* Paths are relative to the CSV's folder. */
  char *base = strdup(file);
  if (!base) {
    fclose(f);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", file);
  }
  char *slash = strrchr(base, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy(base, ".");

  strlist_t paths = {0}, captions = {0};
  rcc_status_t st = RCC_OK;
  char *text = NULL;
  size_t cap = 0;
  ssize_t len;
  int line = 0;
  while (st == RCC_OK && (len = getline(&text, &cap, f)) >= 0) {
    line++;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
      text[--len] = '\0';
    if (len == 0) continue;
    if (line == 1 &&
        (strcmp(text, "image,caption") == 0 || strcmp(text, "image_path,caption") == 0))
      continue;
    char *path, *caption;
    st = parse_csv_line(file, line, text, &path, &caption);
    if (st != RCC_OK) break;
    char *full = path[0] == '/' ? strdup(path) : join_path(base, path);
    if (full && !is_file(full))
      st = rcc_fail(RCC_ERR_IO, "%s:%d: image '%s' not found (looked for %s)", file, line, path,
                    full);
    free(path);
    if (st == RCC_OK)
      st = strlist_push(&paths, full);
    else
      free(full);
    if (st == RCC_OK)
      st = strlist_push(&captions, caption);
    else
      free(caption);
  }
  if (st == RCC_OK && ferror(f)) st = rcc_fail(RCC_ERR_IO, "%s:%d: read error", file, line + 1);
  if (st == RCC_OK && paths.n == 0)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: no 'image_path,caption' lines", file);
  free(text);
  free(base);
  fclose(f);
  if (st != RCC_OK) {
    strlist_free(&paths);
    strlist_free(&captions);
    return st;
  }
  ds->n = paths.n;
  ds->paths = paths.items;
  ds->captions = captions.items;
  return RCC_OK;
}

/* ---- public ------------------------------------------------------------------------- */

rcc_status_t rcc_dataset_open(const char *spec, rcc_dataset_t **out) {
  *out = NULL;
  if (!spec) return rcc_fail(RCC_ERR_ARG, "dataset: no spec given (accepted: " SPEC_FORMS ")");
  rcc_dataset_t *ds;
  RCC_TRY(dataset_new(&ds));
  rcc_status_t st;
  if (strcmp(spec, "fmnist:test") == 0 || strcmp(spec, "fmnist:train") == 0) {
    st = open_fmnist(spec + strlen("fmnist:"), ds);
  } else if (strncmp(spec, "folder:", 7) == 0 && spec[7]) {
    st = open_folder(spec + 7, ds);
  } else if (strncmp(spec, "csv:", 4) == 0 && spec[4]) {
    st = open_csv(spec + 4, ds);
  } else {
    st = rcc_fail(RCC_ERR_ARG, "dataset '%s': unknown form (accepted: " SPEC_FORMS ")", spec);
  }
  if (st != RCC_OK) {
    rcc_dataset_free(ds);
    return st;
  }
  *out = ds;
  return RCC_OK;
}

int rcc_dataset_size(const rcc_dataset_t *ds) { return ds->n; }

int rcc_dataset_num_classes(const rcc_dataset_t *ds) { return ds->num_classes; }

const char *rcc_dataset_class_name(const rcc_dataset_t *ds, int c) {
  return c >= 0 && c < ds->num_classes ? ds->class_names[c] : NULL;
}

int rcc_dataset_label(const rcc_dataset_t *ds, int i) {
  return ds->labels && i >= 0 && i < ds->n ? ds->labels[i] : -1;
}

const char *rcc_dataset_caption(const rcc_dataset_t *ds, int i) {
  return ds->captions && i >= 0 && i < ds->n ? ds->captions[i] : NULL;
}

rcc_status_t rcc_dataset_image(const rcc_dataset_t *ds, int i, rcc_image_t *out) {
  if (i < 0 || i >= ds->n)
    return rcc_fail(RCC_ERR_ARG, "dataset: sample %d out of range 0..%d", i, ds->n - 1);
  if (ds->paths) return rcc_image_load(ds->paths[i], out);
  int h = ds->images.dims[1], w = ds->images.dims[2];
  return rcc_image_from_gray(ds->images.data + (size_t)i * h * w, w, h, out);
}
