/* Private to the checkpoint writer and reader (io/checkpoint.h): the one check of an HDF5
 * call, the HDF5 types of the dtypes a checkpoint holds, and the CRC-32 of a dataset. */
#pragma once
#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "io/tensor.h"

/* HDF5 calls return a negative herr_t, hid_t or htri_t on failure. RCC_CHECK_H5 records
 * "file:line: call failed: HDF5's own message" with status `st` in the calling function's
 * `rc` and jumps to its `done:` label, where that function closes its handles. */
#define RCC_CHECK_H5(st, call)                                                                     \
  do {                                                                                             \
    if ((call) < 0) {                                                                              \
      rc = rcc_h5_fail((st), __FILE__, __LINE__, #call);                                           \
      goto done;                                                                                   \
    }                                                                                              \
  } while (0)

rcc_status_t rcc_h5_fail(rcc_status_t st, const char *file, int line, const char *call);

/* Stops HDF5 from printing its error stacks on stderr: RCC_CHECK_H5 reports them. */
void rcc_h5_quiet(void);

/* Closes any HDF5 handle (dataset, attribute, dataspace, datatype, property list, file);
 * negative ids, the "not opened" value of every handle here, are ignored. */
void rcc_h5_close(hid_t id);

/* The HDF5 type of a dtype in the file (little-endian) and in memory (native);
 * H5I_INVALID_HID for dtypes a checkpoint does not hold. */
hid_t rcc_h5_file_type(rcc_dtype_t dt);
hid_t rcc_h5_mem_type(rcc_dtype_t dt);

/* zlib's CRC-32 of the n raw bytes at p (the "crc32" attribute of every dataset). */
uint32_t rcc_ckpt_crc32(const void *p, size_t n);
