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

/* 1: honour proto_port.crypto (the posix port, the tests); 0 (the MCU ports): no crypto,
 * and none of its code in the image. */
#ifndef PROTO_CRYPTO
#define PROTO_CRYPTO 0
#endif

/* TLS_CHECK as parsed (docs/protocol.md §2). */
typedef struct {
    uint32_t sec_tag;
    uint16_t port;
    uint8_t tls; /* 0: 1.2 or 1.3, 12, 13 */
    uint16_t timeout_ms;
    char host[256]; /* NUL-terminated */
} proto_tls_request;

/* Crypto a port may provide (the posix port, with mbedTLS). Each hook present sets its HELLO
 * feature bit; a device without one answers UNSUPPORTED, so the bits stay truthful. The
 * hooks return 0 or an error code (enum err_code) with a one-line detail in *detail. */
typedef struct {
    /* KEYGEN: a new P-256 key stored in (sec_tag, client_key) (store_put), never sent, and a
     * CSR for `subject` (an X.509 name, "CN=..."), left in a buffer the port keeps until the
     * next keygen. */
    int (*keygen)(void *ctx, uint32_t sec_tag, const char *subject, const uint8_t **csr,
                  uint16_t *csr_len, const char **detail);
    /* SIGNED_ONLY: does r||s (ECDSA P-256 over the bundle's digest) verify with the device's
     * provisioning key, which key_id must name? 0 if so. */
    int (*verify_bundle)(void *ctx, const uint8_t digest[32], const uint8_t key_id[8],
                         const uint8_t signature[64], const char **detail);
    /* TLS_CHECK: the handshake from the slots of req->sec_tag; the TLS_RESULT payload is
     * written to `out` (at most `cap` bytes), its length in *len. */
    int (*tls_check)(void *ctx, const proto_tls_request *req, uint8_t *out, uint16_t cap,
                     uint16_t *len, const char **detail);
    void *ctx;
} proto_crypto;

typedef struct {
    void (*put)(void *ctx, uint8_t byte); /* one wire byte */
    void (*flush)(void *ctx);             /* end of a frame: push it out */
    void (*reset)(void *ctx);             /* RESET: called after its OK went out */
    void *ctx;
    const uint8_t *uid;
    uint8_t uid_len; /* <= 32 */
    const char *firmware;
    const proto_crypto *crypto; /* NULL: no KEYGEN, SIGNED_ONLY or TLS_CHECK */
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
