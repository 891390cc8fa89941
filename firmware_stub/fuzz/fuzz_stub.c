/* libFuzzer target for the frame decoder, the message handler, the bundle reader and the
 * store, over a RAM flash. The first input byte picks how the rest is used:
 *
 *   0  raw wire bytes into proto_input (COBS, CRC, resync, NAK paths)
 *   1  a list of requests `type u8 | len u8 | payload`, each framed correctly, so the
 *      handlers themselves are reached past the CRC (type 0x0D: a DATA_LEAN body, which
 *      has no header)
 *   2  bundle bytes into bundle_check, and when valid, store_apply then a remount
 *   3  bundle bytes sent as a whole transfer (HELLO, BEGIN, DATA..., COMMIT, LIST, READ);
 *      with bit 5 a lean one (BEGIN_LEAN, DATA_LEAN in chunks longer than a classic DATA)
 *
 * Bits 2-3 of that byte pick the flash's write block (1, 4, 8 or 16 bytes), so the padded
 * store layout and the staging area's partly received blocks are fuzzed too. Bit 4 gives the
 * device crypto hooks (stand-ins for the posix port's mbedTLS ones: a key made from the
 * subject and stored with store_put, a verdict from the signature's first byte, a
 * TLS_RESULT built from the request), so KEYGEN, SIGNED_ONLY and TLS_CHECK are reached.
 *
 * Invariants beyond the sanitizers: everything the device sends decodes as good frames;
 * a store that mounts after an apply holds at most STORE_MAX_SLOTS slots. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "crc32.h"
#include "flash_ram.h"
#include "frame.h"
#include "messages.h"
#include "proto.h"
#include "sha256.h"
#include "store.h"

static frame_rx check_rx;
static unsigned long frames_out;

static void check_put(void *ctx, uint8_t b)
{
    (void)ctx;
    frame f;
    frame_event ev = frame_rx_byte(&check_rx, b, &f);
    if (ev == FRAME_BAD)
        __builtin_trap(); /* the device sent a frame the host could not decode */
    if (ev == FRAME_GOOD) {
        if (f.version != 1 || f.length != f.payload_len || f.type < 0x80)
            __builtin_trap();
        frames_out++;
    }
}

static const uint8_t UID[8] = {'f', 'u', 'z', 'z'};
static int fake_keygen(void *ctx, uint32_t sec_tag, const char *subject, const uint8_t **csr,
                       uint16_t *csr_len, const char **detail)
{
    static uint8_t der[300];
    (void)ctx;
    store_slot meta = {sec_tag, 2, 1, 0, (uint32_t)strlen(subject) + 1u, {0}, 0};
    sha256(subject, meta.length, meta.sha256);
    if (store_put(&meta, (const uint8_t *)subject) != STORE_OK) {
        *detail = "store full";
        return ERR_NO_SPACE;
    }
    memset(der, 0x30, sizeof der);
    *csr = der;
    *csr_len = (uint16_t)(meta.length % sizeof der);
    return 0;
}

static int fake_verify(void *ctx, const uint8_t digest[32], const uint8_t key_id[8],
                       const uint8_t signature[64], const char **detail)
{
    (void)ctx, (void)digest, (void)key_id;
    *detail = "bundle signature does not verify";
    return signature[0] & 1u ? ERR_BAD_SIGNATURE : 0;
}

static int fake_tls(void *ctx, const proto_tls_request *q, uint8_t *out, uint16_t cap,
                    uint16_t *len, const char **detail)
{
    (void)ctx, (void)detail;
    msg_tls_result r = {q->sec_tag, (uint8_t)(q->port % 13u), 1, 2, q->host, q->host, q->host,
                        q->host, q->host, {0}, (uint8_t)(q->tls % 10u)};
    for (unsigned i = 0; i < TLS_RESULT_MAX_CHAIN; i++)
        r.chain[i] = q->host;
    *len = msg_build_tls_result(out, cap, &r);
    return 0;
}

static const proto_crypto CRYPTO = {fake_keygen, fake_verify, fake_tls, NULL};
static proto_port PORT = {check_put, NULL, NULL, NULL, UID, sizeof UID, "fuzz", NULL};

static uint8_t body[FRAME_MAX_BODY + FRAME_CRC];
static uint8_t wire[COBS_MAX_ENCODED(FRAME_MAX_BODY + FRAME_CRC) + 1];
static size_t wire_len;
static uint16_t seq;

static void to_wire(void *ctx, uint8_t b)
{
    (void)ctx;
    wire[wire_len++] = b;
}

static void request(uint8_t type, const uint8_t *payload, uint16_t n)
{
    if (n > FRAME_MAX_PAYLOAD)
        n = FRAME_MAX_PAYLOAD;
    memcpy(body + FRAME_HEADER, payload, n);
    wire_len = 0;
    frame_send(body, type, ++seq, n, to_wire, NULL);
    proto_input(wire, wire_len);
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A DATA_LEAN frame: 0x0D | `rest` (transfer_id, index, chunk), CRC, COBS, delimiter. */
static uint8_t lean_wire[COBS_MAX_ENCODED(FRAME_RX_BODY + FRAME_CRC) + 1];
static size_t lean_len;

static void to_lean_wire(void *ctx, uint8_t b)
{
    (void)ctx;
    lean_wire[lean_len++] = b;
}

static void lean_request(const uint8_t *rest, uint16_t n)
{
    static uint8_t lean[FRAME_RX_BODY + FRAME_CRC];
    if (n > FRAME_RX_BODY - 1u)
        n = FRAME_RX_BODY - 1u;
    lean[0] = FRAME_LEAN_DATA;
    memcpy(lean + 1, rest, n);
    put32(lean + n + 1u, crc32_update(0, lean, n + 1u));
    lean_len = 0;
    cobs_encode(lean, n + 1u + FRAME_CRC, to_lean_wire, NULL);
    to_lean_wire(NULL, 0);
    proto_input(lean_wire, lean_len);
}

static int mem_read(void *ctx, uint32_t off, void *buf, uint32_t n)
{
    const uint8_t *data = ((const uint8_t **)ctx)[0];
    uint32_t len = (uint32_t)(uintptr_t)((const uint8_t **)ctx)[1];
    if (off > len || n > len - off)
        return -1;
    memcpy(buf, data + off, n);
    return 0;
}

static void transfer(const uint8_t *data, size_t size, int lean)
{
    uint8_t p[64];
    const uint16_t chunk = lean ? FRAME_MAX_PAYLOAD + 100u : 200u;
    p[0] = 1;
    put16(p + 1, 512);
    request(MSG_HELLO, p, 3);
    put16(p, 7);
    put32(p + 2, (uint32_t)size);
    put16(p + 6, chunk);
    sha256(data, size, p + 8);
    request(lean ? MSG_BEGIN_LEAN : MSG_BEGIN, p, lean ? 8u + LEAN_DIGEST_SIZE : 40u);
    static uint8_t d[DATA_OVERHEAD + FRAME_MAX_PAYLOAD + 100u];
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        put16(d, 7);
        if (lean) {
            put16(d + 2, (uint32_t)(off / chunk));
            memcpy(d + 4, data + off, n);
            lean_request(d, (uint16_t)(4 + n));
            continue;
        }
        put32(d + 2, (uint32_t)off);
        memcpy(d + DATA_OVERHEAD, data + off, n);
        request(MSG_DATA, d, (uint16_t)(DATA_OVERHEAD + n));
    }
    put16(p, 7);
    request(MSG_COMMIT, p, 2);
    put16(p, 0);
    request(MSG_LIST, p, 2);
    for (uint16_t i = 0; i < store_count() && i < 4; i++) {
        store_slot s;
        if (store_get(i, &s) == 0) {
            put32(p, s.sec_tag);
            p[4] = s.slot;
            put32(p + 5, 0);
            put16(p + 9, 400);
            request(MSG_READ, p, 11);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t blocks[4] = {1, 4, 8, 16};
    uint8_t mode = data[0] & 3u;
    const int lean = data[0] & 0x20u;
    ram_flash_write_block = blocks[(data[0] >> 2) & 3u];
    PORT.crypto = data[0] & 0x10u ? &CRYPTO : NULL;
    data++;
    size--;
    memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
    ram_flash_budget = -1;
    frame_rx_reset(&check_rx);
    seq = 0;
    proto_init(&PORT);
    switch (mode) {
    case 0:
        proto_input(data, size);
        break;
    case 1:
        while (size >= 2) {
            uint8_t type = data[0], n = data[1];
            data += 2;
            size -= 2;
            if (n > size)
                n = (uint8_t)size;
            if (type == FRAME_LEAN_DATA)
                lean_request(data, n);
            else
                request(type, data, n);
            data += n;
            size -= n;
        }
        break;
    case 2: {
        const void *ctx[2] = {data, (const void *)(uintptr_t)size};
        bundle_src src = {mem_read, ctx, (uint32_t)size};
        bundle_view v;
        if (bundle_check(&src, &v) == BUNDLE_OK) {
            store_apply(&v, STORE_MERGE_REPLACE_TAGS);
            store_mount();
            if (store_count() > STORE_MAX_SLOTS)
                __builtin_trap();
        }
        break;
    }
    default:
        if (size <= store_staging_size())
            transfer(data, size, lean);
        break;
    }
    return 0;
}
