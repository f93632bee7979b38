/* HDF5 helpers shared by the checkpoint writer and reader (io/checkpoint_h5.h): error
 * messages taken from HDF5's error stack, handle closing, dtype <-> HDF5 type, CRC-32. */
#include "io/checkpoint_h5.h"

#include <mpi.h>
#include <stdio.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error                                                                                             \
    "the CRC-32 is taken over the bytes as stored (little-endian); this code assumes a little-endian host"
#endif

/* The outermost (API call) and innermost (root cause) descriptions on HDF5's stack. */
typedef struct {
  char outer[256];
  char inner[512];
  int depth;
} h5_stack_t;

/* H5E_WALK_UPWARD visits the innermost error first (n = 0) and the API call last. */
static herr_t stack_cb(unsigned n, const H5E_error2_t *e, void *data) {
  h5_stack_t *s = data;
  const char *desc = e->desc && e->desc[0] ? e->desc : "(no description)";
  if (n == 0) snprintf(s->inner, sizeof s->inner, "%s() %s", e->func_name, desc);
  snprintf(s->outer, sizeof s->outer, "%s", desc);
  s->depth++;
  return 0;
}

rcc_status_t rcc_h5_fail(rcc_status_t st, const char *file, int line, const char *call) {
  h5_stack_t s = {.depth = 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, stack_cb, &s);
  char where[64] = "";
  int init = 0, fini = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fini);
  if (init && !fini) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    snprintf(where, sizeof where, " on rank %d", rank);
  }
  if (s.depth == 0)
    return rcc_fail(st, "%s:%d: %s failed%s (HDF5 left no message)", file, line, call, where);
  if (s.depth == 1) return rcc_fail(st, "%s:%d: %s failed%s: %s", file, line, call, where, s.inner);
  return rcc_fail(st, "%s:%d: %s failed%s: %s (%s)", file, line, call, where, s.outer, s.inner);
}

void rcc_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void rcc_h5_close(hid_t id) {
  /* One close for every kind: the handle's reference count drops to zero and HDF5 closes
   * it as H5Dclose, H5Sclose, ... would. */
  if (id >= 0) H5Idec_ref(id);
}

hid_t rcc_h5_file_type(rcc_dtype_t dt) {
  switch (dt) {
  case RCC_DTYPE_F32: return H5T_IEEE_F32LE;
  case RCC_DTYPE_F64: return H5T_IEEE_F64LE;
  case RCC_DTYPE_I64: return H5T_STD_I64LE;
  case RCC_DTYPE_I32: return H5T_STD_I32LE;
  case RCC_DTYPE_U8: return H5T_STD_U8LE;
  default: return H5I_INVALID_HID;
  }
}

hid_t rcc_h5_mem_type(rcc_dtype_t dt) {
  switch (dt) {
  case RCC_DTYPE_F32: return H5T_NATIVE_FLOAT;
  case RCC_DTYPE_F64: return H5T_NATIVE_DOUBLE;
  case RCC_DTYPE_I64: return H5T_NATIVE_INT64;
  case RCC_DTYPE_I32: return H5T_NATIVE_INT32;
  case RCC_DTYPE_U8: return H5T_NATIVE_UINT8;
  default: return H5I_INVALID_HID;
  }
}

uint32_t rcc_ckpt_crc32(const void *p, size_t n) {
  /* crc32_z takes a size_t length: no 4 GiB limit per call. */
  return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), (const Bytef *)p, n);
}
