/* Link frames (docs/protocol.md §1): wire = COBS(header | payload | crc32) | 0x00,
 * header = version u8 | type u8 | seq u16 | length u16. */
#ifndef PROVISION_FRAME_H
#define PROVISION_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "cobs.h"

#define FRAME_VERSION 1u
#define FRAME_HEADER 6u
#define FRAME_CRC 4u

#ifndef FRAME_MAX_PAYLOAD
#define FRAME_MAX_PAYLOAD 512u /* what this device accepts and sends at most */
#endif
#define FRAME_MAX_BODY (FRAME_HEADER + FRAME_MAX_PAYLOAD)

/* 1: Feature.LEAN (BEGIN_LEAN, DATA_LEAN; the posix port, the tests). A DATA_LEAN body has
 * no header: its first byte is its type, which no version-1 header starts with. This build
 * receives one whole (a chunk of up to LEAN_MAX_CHUNK): RAM a port without the feature
 * does not spend. */
#ifndef PROTO_LEAN
#define PROTO_LEAN 0
#endif
#define FRAME_LEAN_DATA 0x0Du
#define FRAME_LEAN_HEADER 5u /* type u8 | transfer_id u16 | index u16 */
#define LEAN_MAX_CHUNK 4096u
#if PROTO_LEAN && FRAME_LEAN_HEADER + LEAN_MAX_CHUNK > FRAME_MAX_BODY
#define FRAME_RX_BODY (FRAME_LEAN_HEADER + LEAN_MAX_CHUNK)
#else
#define FRAME_RX_BODY FRAME_MAX_BODY
#endif
#define FRAME_RX_CAP COBS_MAX_ENCODED(FRAME_RX_BODY + FRAME_CRC)

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint16_t length;        /* as the header says */
    const uint8_t *payload; /* points into the receiver's buffer */
    uint16_t payload_len;   /* bytes actually present */
    const uint8_t *body;    /* the whole body (a DATA_LEAN frame has no header) */
    uint16_t body_len;
} frame;

typedef enum {
    FRAME_NONE = 0, /* need more bytes (or an empty frame: a deliberate resync) */
    FRAME_GOOD,     /* `out` holds a frame with a good CRC */
    FRAME_BAD,      /* bad COBS, bad CRC, too short or too long: answer NAK(BAD_FRAME) */
} frame_event;

typedef struct {
    uint8_t buf[FRAME_RX_CAP];
    uint16_t len;
    uint8_t overflow;
} frame_rx;

void frame_rx_reset(frame_rx *rx);
/* Feed one byte; on FRAME_GOOD `out` is valid until the next call. */
frame_event frame_rx_byte(frame_rx *rx, uint8_t byte, frame *out);

/* Fill the header of `body` (FRAME_HEADER bytes, payload already after it), append the CRC
 * (the buffer needs FRAME_CRC spare bytes) and emit the COBS frame and delimiter to `sink`.
 * Returns the wire length. */
size_t frame_send(uint8_t *body, uint8_t type, uint16_t seq, uint16_t payload_len,
                  cobs_sink sink, void *ctx);

#endif
