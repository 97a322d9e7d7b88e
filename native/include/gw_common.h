/* Shared vocabulary of the C core: value types and status codes.
 *
 * Every C function of the core that can fail returns one of the GW_E* codes (negative) or
 * GW_OK / a non-negative count. The Python wrappers turn each code into an exception at once.
 */
#ifndef GW_COMMON_H
#define GW_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* cdef: begin */
/* Value types of the data model (InfluxDB's): stored in blocks, batches and the WAL. */
#define GW_FLOAT  1
#define GW_INT    2
#define GW_UINT   3
#define GW_BOOL   4
#define GW_STRING 5

#define GW_OK        0
#define GW_ENOMEM   -1   /* allocation failed or a size limit was reached */
#define GW_EINVAL   -2   /* the caller passed something the function does not take */
#define GW_ECORRUPT -3   /* bytes read back (disk, network) fail validation or checksum */
#define GW_EIO      -4   /* an I/O call failed; errno holds the reason */
#define GW_ENOSPC   -5   /* the device is full */
#define GW_ETRUNC   -6   /* input ends before the structure it declares */
/* cdef: end */

#endif
