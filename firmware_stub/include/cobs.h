/* Consistent Overhead Byte Stuffing, as the Python `cobs` package does it (no trailing zero;
 * the 0x00 frame delimiter is added by the framer). */
#ifndef PROVISION_COBS_H
#define PROVISION_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Emits one encoded byte; the encoder never buffers the output. */
typedef void (*cobs_sink)(void *ctx, uint8_t byte);

/* Encode `len` bytes to `sink`; returns the number of bytes emitted. */
size_t cobs_encode(const uint8_t *src, size_t len, cobs_sink sink, void *ctx);

/* Decode `len` bytes of one COBS block in place (output never longer than input).
 * Returns the decoded length, or -1 if the block contains a zero or a code runs past the end. */
long cobs_decode_inplace(uint8_t *buf, size_t len);

/* Worst-case encoded size of `len` bytes (no delimiter). */
#define COBS_MAX_ENCODED(len) ((len) + (len) / 254u + 1u)

#endif
