/* The device side of the native link protocol (docs/protocol.md): bytes in, frames out.
 * No clock, no heap; a port feeds received bytes and provides a byte sink. */
#ifndef PROVISION_PROTO_H
#define PROVISION_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifndef PROTO_WINDOW
#define PROTO_WINDOW 8u /* DATA frames in flight; at most 32 (the SACK bitmap) */
#endif
#ifndef PROTO_MAX_SLOTS
#define PROTO_MAX_SLOTS 32u
#endif
#ifndef PROTO_MAX_TAGS
#define PROTO_MAX_TAGS 16u
#endif
#ifndef PROTO_MAX_SLOT_SIZE
#define PROTO_MAX_SLOT_SIZE (16u * 1024u)
#endif

typedef struct {
    void (*put)(void *ctx, uint8_t byte); /* one wire byte */
    void (*flush)(void *ctx);             /* end of a frame: push it out */
    void (*reset)(void *ctx);             /* RESET: called after its OK went out */
    void *ctx;
    const uint8_t *uid;
    uint8_t uid_len; /* <= 32 */
    const char *firmware;
} proto_port;

/* Optional, for a port whose UART can change rate (FEATURE_BAUD): the rates CHANGE_BAUD may
 * switch to and the switch itself, called once the OK has been flushed at the old rate; it
 * returns the rate the UART was at. Survives proto_init. */
void proto_set_baud_port(const uint32_t *rates, uint8_t count,
                         uint32_t (*set_baud)(void *ctx, uint32_t baud));

/* Mount the store and forget any transfer (power-on, or after RESET). */
void proto_init(const proto_port *port);

/* Feed received bytes; answers go out through the port as frames complete. */
void proto_input(const uint8_t *data, size_t n);

#endif
