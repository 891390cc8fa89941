/* Frame vectors (tests/vectors/frames.jsonl via gen_vectors.py) and device scenarios. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "flash_ram.h"
#include "frame.h"
#include "messages.h"
#include "proto.h"
#include "sha256.h"
#include "store.h"
#include "test_support.h"

static const struct {
    const char *name;
    uint8_t type;
} TYPES[] = {
    {"HELLO", MSG_HELLO},         {"BEGIN", MSG_BEGIN},
    {"DATA", MSG_DATA},           {"COMMIT", MSG_COMMIT},
    {"LIST", MSG_LIST},           {"READ", MSG_READ},
    {"DELETE", MSG_DELETE},       {"KEYGEN", MSG_KEYGEN},
    {"RESET", MSG_RESET},         {"OK", MSG_OK},
    {"HELLO_INFO", MSG_HELLO_INFO}, {"ACK", MSG_ACK},
    {"NAK", MSG_NAK},             {"COMMITTED", MSG_COMMITTED},
    {"LIST_PAGE", MSG_LIST_PAGE}, {"READ_DATA", MSG_READ_DATA},
    {"CSR", MSG_CSR},             {"ERROR", MSG_ERROR},
    {"TLS_CHECK", MSG_TLS_CHECK}, {"TLS_RESULT", MSG_TLS_RESULT},
    {"CHANGE_BAUD", MSG_CHANGE_BAUD}, {"BEGIN_LEAN", MSG_BEGIN_LEAN},
    {"DATA_LEAN", MSG_DATA_LEAN},
};

typedef struct {
    uint8_t buf[8192];
    size_t len;
} capture;

static void cap_put(void *ctx, uint8_t b)
{
    capture *c = ctx;
    if (c->len < sizeof c->buf)
        c->buf[c->len++] = b;
}

static char **g_tok;
static int g_nt;

static const char *field(const char *key)
{
    size_t k = strlen(key);
    for (int i = 4; i < g_nt; i++)
        if (strncmp(g_tok[i], key, k) == 0 && g_tok[i][k] == '=')
            return g_tok[i] + k + 1;
    return NULL;
}

static unsigned long ufield(const char *key)
{
    const char *v = field(key);
    return v ? strtoul(v, NULL, 10) : 0xFFFFFFFFul;
}

static long hfield(const char *key, uint8_t *out, size_t cap)
{
    const char *v = field(key);
    return v ? unhex(v, out, cap) : -1;
}

/* Compare a parsed request with the vector's fields. */
static int request_matches(const msg_request *r)
{
    uint8_t b[256];
    long n;
    switch (r->type) {
    case MSG_HELLO:
        return r->u.hello.version == ufield("version") &&
               r->u.hello.max_payload == ufield("max_payload");
    case MSG_BEGIN:
        n = hfield("sha256", b, sizeof b);
        return r->u.begin.transfer_id == ufield("transfer_id") &&
               r->u.begin.total_size == ufield("total_size") &&
               r->u.begin.chunk_size == ufield("chunk_size") && n == 32 &&
               memcmp(b, r->u.begin.sha256, 32) == 0;
    case MSG_BEGIN_LEAN:
        n = hfield("digest", b, sizeof b);
        return r->u.begin.transfer_id == ufield("transfer_id") &&
               r->u.begin.total_size == ufield("total_size") &&
               r->u.begin.chunk_size == ufield("chunk_size") && n == LEAN_DIGEST_SIZE &&
               memcmp(b, r->u.begin.sha256, LEAN_DIGEST_SIZE) == 0;
    case MSG_DATA_LEAN:
        n = hfield("chunk", b, sizeof b);
        return r->u.data.transfer_id == ufield("transfer_id") &&
               r->u.data.offset == ufield("index") && n == r->u.data.chunk_len &&
               memcmp(b, r->u.data.chunk, (size_t)n) == 0;
    case MSG_DATA:
        n = hfield("chunk", b, sizeof b);
        return r->u.data.transfer_id == ufield("transfer_id") &&
               r->u.data.offset == ufield("offset") && n == r->u.data.chunk_len &&
               memcmp(b, r->u.data.chunk, (size_t)n) == 0;
    case MSG_COMMIT:
        return r->u.commit.transfer_id == ufield("transfer_id");
    case MSG_LIST:
        return r->u.list.start == ufield("start");
    case MSG_READ:
        return r->u.read.sec_tag == ufield("sec_tag") && r->u.read.slot == ufield("slot") &&
               r->u.read.offset == ufield("offset") && r->u.read.max_len == ufield("max_len");
    case MSG_DELETE:
        return r->u.del.scope == ufield("scope") && r->u.del.sec_tag == ufield("sec_tag") &&
               r->u.del.slot == ufield("slot") && r->u.del.guard == ufield("guard");
    case MSG_KEYGEN:
        n = hfield("subject", b, sizeof b);
        return r->u.keygen.sec_tag == ufield("sec_tag") &&
               r->u.keygen.offset == ufield("offset") && n == r->u.keygen.subject_len &&
               memcmp(b, r->u.keygen.subject, (size_t)n) == 0;
    case MSG_TLS_CHECK:
        n = hfield("host", b, sizeof b);
        return r->u.tls.sec_tag == ufield("sec_tag") && r->u.tls.port == ufield("port") &&
               r->u.tls.tls == ufield("tls") && r->u.tls.timeout_ms == ufield("timeout_ms") &&
               n == r->u.tls.host_len && memcmp(b, r->u.tls.host, (size_t)n) == 0;
    case MSG_RESET:
        return 1;
    case MSG_CHANGE_BAUD:
        return r->u.change_baud.baud == ufield("baud");
    }
    return 0;
}

/* Build a response payload from the vector's fields with the C builders; -1 if unknown. */
static long build_response(uint8_t type, uint8_t *p)
{
    uint8_t b[512], uid[64];
    char text[128];
    long n, u;
    switch (type) {
    case MSG_OK:
        return msg_build_ok(p, (uint8_t)ufield("request"));
    case MSG_HELLO_INFO: {
        n = hfield("firmware", b, sizeof b);
        u = hfield("uid", uid, sizeof uid);
        if (n < 0 || u < 0)
            return -1;
        memcpy(text, b, (size_t)n);
        text[n] = 0;
        uint32_t rates[MSG_MAX_RATES];
        uint8_t nr = 0;
        for (const char *e = field("rates"); e && *e && *e != '-' && nr < MSG_MAX_RATES;) {
            rates[nr++] = (uint32_t)strtoul(e, (char **)&e, 10);
            if (*e == ',')
                e++;
        }
        msg_hello_info h = {(uint16_t)ufield("max_payload"), (uint8_t)ufield("window"),
                            (uint32_t)ufield("max_bundle"), (uint16_t)ufield("max_slots"),
                            (uint16_t)ufield("max_tags"), (uint32_t)ufield("max_slot_size"),
                            (uint16_t)ufield("features"), uid, (uint8_t)u, text, rates, nr};
        return msg_build_hello_info(p, &h);
    }
    case MSG_ACK:
        return msg_build_ack(p, (uint16_t)ufield("transfer_id"), (uint32_t)ufield("cumulative"),
                             (uint32_t)ufield("sack"));
    case MSG_NAK:
        return msg_build_nak(p, (uint16_t)ufield("transfer_id"), (uint32_t)ufield("offset"),
                             (uint8_t)ufield("reason"));
    case MSG_COMMITTED:
        if (hfield("set_digest", b, sizeof b) != 32)
            return -1;
        return msg_build_committed(p, (uint16_t)ufield("transfer_id"),
                                   (uint16_t)ufield("slot_count"), b);
    case MSG_LIST_PAGE: {
        const char *e = field("entries");
        uint8_t count = 0;
        long len = 5;
        while (e && *e && *e != '-') {
            unsigned long tag = strtoul(e, (char **)&e, 10);
            unsigned long slot = strtoul(e + 1, (char **)&e, 10);
            unsigned long size = strtoul(e + 1, (char **)&e, 10);
            char hex[65];
            memcpy(hex, e + 1, 64);
            hex[64] = 0;
            unhex(hex, b, sizeof b);
            len += msg_put_list_entry(p + len, (uint32_t)tag, (uint8_t)slot, (uint32_t)size, b);
            count++;
            e += 65;
            if (*e == ',')
                e++;
        }
        msg_build_list_page(p, (uint16_t)ufield("total"), (uint16_t)ufield("start"), count);
        return len;
    }
    case MSG_READ_DATA:
        n = msg_build_read_data(p, (uint32_t)ufield("sec_tag"), (uint8_t)ufield("slot"),
                                (uint32_t)ufield("total"), (uint32_t)ufield("offset"));
        return n + hfield("data", p + n, 4096);
    case MSG_CSR:
        n = msg_build_csr(p, (uint32_t)ufield("sec_tag"), (uint16_t)ufield("total"),
                          (uint16_t)ufield("offset"));
        return n + hfield("data", p + n, 4096);
    case MSG_TLS_RESULT: {
        static char texts[5][256], chain[TLS_RESULT_MAX_CHAIN][256];
        static const char *const names[5] = {"version", "cipher", "accepted_as", "evidence",
                                             "detail"};
        msg_tls_result r = {(uint32_t)ufield("sec_tag"), (uint8_t)ufield("failure"),
                            (uint8_t)ufield("server_verified"), (uint8_t)ufield("client_accepted"),
                            texts[0], texts[1], texts[2], texts[3], texts[4], {0}, 0};
        for (int i = 0; i < 5; i++) {
            n = hfield(names[i], (uint8_t *)texts[i], sizeof texts[i] - 1);
            if (n < 0)
                return -1;
            texts[i][n] = 0;
        }
        const char *e = field("chain");
        while (e && *e && *e != '-' && r.chain_count < TLS_RESULT_MAX_CHAIN) {
            char hex[512];
            size_t k = strcspn(e, ",");
            memcpy(hex, e, k < sizeof hex - 1 ? k : sizeof hex - 1);
            hex[k < sizeof hex - 1 ? k : sizeof hex - 1] = 0;
            n = unhex(hex, (uint8_t *)chain[r.chain_count], 255);
            chain[r.chain_count][n < 0 ? 0 : n] = 0;
            r.chain[r.chain_count] = chain[r.chain_count];
            r.chain_count++;
            e += k + (e[k] == ',');
        }
        return msg_build_tls_result(p, 4096, &r);
    }
    case MSG_ERROR:
        n = hfield("detail", b, sizeof b);
        if (n < 0)
            return -1;
        memcpy(text, b, (size_t)n);
        text[n] = 0;
        return msg_build_error(p, (uint8_t)ufield("code"), (uint8_t)ufield("request"), text);
    }
    return -1;
}

void test_frame_vector(char **tok, int nt)
{
    static uint8_t wire[8192], body[8192];
    static frame_rx rx;
    const char *name = tok[1];
    char msg[200];
    g_tok = tok;
    g_nt = nt;
    int type = -1;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcmp(TYPES[i].name, name) == 0)
            type = TYPES[i].type;
    if (nt < 4) {
        fail("frame", name, "vector line too short");
        return;
    }
    long n = unhex(tok[3], wire, sizeof wire);
    checks++;
    /* 1. The C receiver takes the frame apart: COBS, CRC, header. */
    frame f;
    frame_event ev = FRAME_NONE;
    frame_rx_reset(&rx);
    for (long i = 0; i < n; i++) {
        ev = frame_rx_byte(&rx, wire[i], &f);
        if (ev != FRAME_NONE && i != n - 1)
            break;
    }
    if (ev != FRAME_GOOD && f.payload_len > FRAME_MAX_PAYLOAD) {
        printf("skip frame %s: payload over this device's limit\n", name);
        return;
    }
    if (ev != FRAME_GOOD) {
        fail("frame", name, "the C receiver rejects a good frame");
        return;
    }
    if (type == MSG_DATA_LEAN) {
        /* Its own body, no header: the receiver hands it over whole, proto parses it. */
        msg_request r;
        checks++;
        if (f.type != FRAME_LEAN_DATA || f.body_len != f.payload_len + 1u ||
            msg_parse_request(MSG_DATA_LEAN, f.payload, f.payload_len, &r) != MSG_PARSE_OK ||
            !request_matches(&r))
            fail("frame", name, "C parsed DATA_LEAN fields differ from the vector");
        return;
    }
    if (f.version != 1 || f.seq != strtoul(tok[2], NULL, 10) || f.length != f.payload_len ||
        (type >= 0 && f.type != type)) {
        fail("frame", name, "header fields differ");
        return;
    }
    /* 2. The C framer rebuilds the same bytes. */
    capture *c = calloc(1, sizeof *c);
    memcpy(body + FRAME_HEADER, f.payload, f.payload_len);
    frame_send(body, f.type, f.seq, f.payload_len, cap_put, c);
    if (c->len != (size_t)n || memcmp(c->buf, wire, (size_t)n) != 0)
        fail("frame", name, "C framing differs from the Python bytes");
    free(c);
    if (type < 0) {
        printf("frame %s: framing checked; not a message this device handles\n", name);
        return;
    }
    /* 3. Requests: C parses the fields. Responses: C builds the same payload. */
    if (type < 0x80) {
        msg_request r;
        if (msg_parse_request((uint8_t)type, f.payload, f.payload_len, &r) != MSG_PARSE_OK)
            fail("frame", name, "C parser rejects the payload");
        else if (!request_matches(&r))
            fail("frame", name, "C parsed fields differ from the vector");
        return;
    }
    static uint8_t built[8192];
    long len = build_response((uint8_t)type, built);
    if (len != f.payload_len || memcmp(built, f.payload, (size_t)len) != 0) {
        snprintf(msg, sizeof msg, "C builds %ld bytes, Python %u (or the bytes differ)", len,
                 f.payload_len);
        fail("frame", name, msg);
    }
}

/* ---- device scenarios over the RAM flash ---- */

static capture out;
static int resets;
static void on_reset(void *ctx)
{
    (void)ctx;
    resets++;
}
static const uint8_t UID[] = {1, 2, 3, 4};
static const proto_port PORT = {cap_put, NULL, on_reset, &out, UID, 4, "provision-stub test", NULL};

static uint16_t seq;

static void request(uint8_t type, const uint8_t *payload, uint16_t n)
{
    static uint8_t body[FRAME_MAX_BODY + FRAME_CRC];
    capture wire = {0};
    memcpy(body + FRAME_HEADER, payload, n);
    frame_send(body, type, ++seq, n, cap_put, &wire);
    out.len = 0;
    proto_input(wire.buf, wire.len);
}

/* Decode the device's answers into `frames`; returns how many. */
static int answers(frame *frames, int max)
{
    static frame_rx rx;
    static uint8_t copies[8][FRAME_MAX_BODY];
    int count = 0;
    frame_rx_reset(&rx);
    for (size_t i = 0; i < out.len && count < max; i++) {
        if (frame_rx_byte(&rx, out.buf[i], &frames[count]) == FRAME_GOOD) {
            memcpy(copies[count], frames[count].payload, frames[count].payload_len);
            frames[count].payload = copies[count];
            count++;
        }
    }
    return count;
}

static void expect(const char *name, int ok)
{
    checks++;
    if (!ok)
        fail("proto", name, "unexpected answer");
}

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

/* A whole transfer in 7-byte chunks (so chunk edges fall inside write blocks), each window
 * sent back to front with one chunk twice: the staged bundle must still commit. */
static void test_transfer(frame *a)
{
    static uint8_t d[DATA_OVERHEAD + 7];
    uint8_t p[40];
    const uint32_t chunk = 7, total = store_new_len;
    const uint32_t chunks = (total + chunk - 1) / chunk;
    int acked = 1;
    put16(p, 9);
    put32(p + 2, total);
    put16(p + 6, chunk);
    sha256(store_new, total, p + 8);
    request(MSG_BEGIN, p, 40);
    expect("begin", answers(a, 8) == 1 && a[0].type == MSG_ACK);
    for (uint32_t first = 0; first < chunks; first += PROTO_WINDOW) {
        uint32_t last = first + PROTO_WINDOW < chunks ? first + PROTO_WINDOW : chunks;
        for (uint32_t k = last; k-- > first;) {
            for (int again = 0; again < (k == first + 1 ? 2 : 1); again++) {
                uint32_t off = k * chunk, n = total - off < chunk ? total - off : chunk;
                put16(d, 9);
                put32(d + 2, off);
                memcpy(d + DATA_OVERHEAD, store_new + off, n);
                request(MSG_DATA, d, (uint16_t)(DATA_OVERHEAD + n));
                acked &= answers(a, 8) == 1 && a[0].type == MSG_ACK;
            }
        }
    }
    expect("data acked", acked);
    put16(p, 9);
    request(MSG_COMMIT, p, 2);
    expect("commit unaligned chunks", answers(a, 8) == 1 && a[0].type == MSG_COMMITTED);
    expect("committed set", store_count() == 2);
}

/* A DATA_LEAN frame: its own body (type | transfer_id | index | chunk), CRC, COBS. */
static void lean_data(uint16_t id, uint16_t index, const uint8_t *chunk, uint16_t n)
{
    static uint8_t body[FRAME_RX_BODY + FRAME_CRC];
    capture wire = {0};
    body[0] = FRAME_LEAN_DATA;
    put16(body + 1, id);
    put16(body + 3, index);
    memcpy(body + FRAME_LEAN_HEADER, chunk, n);
    uint32_t crc = crc32_update(0, body, FRAME_LEAN_HEADER + n);
    put32(body + FRAME_LEAN_HEADER + n, crc);
    cobs_encode(body, FRAME_LEAN_HEADER + n + FRAME_CRC, cap_put, &wire);
    cap_put(&wire, 0);
    out.len = 0;
    proto_input(wire.buf, wire.len);
}

/* Feature.LEAN: BEGIN_LEAN with chunks longer than a control frame's payload, DATA_LEAN
 * answered at seq 0 (the last chunk first, one twice), COMMIT; and what is refused. */
static void test_lean_transfer(frame *a)
{
    uint8_t p[12], digest[32];
    const uint32_t total = store_new_len, chunk = FRAME_MAX_PAYLOAD + 100u;
    const uint32_t chunks = (total + chunk - 1) / chunk;
    sha256(store_new, total, digest);
    lean_data(5, 0, store_new, 10);
    expect("lean data, no transfer", answers(a, 8) == 1 && a[0].type == MSG_ERROR &&
                                         a[0].seq == 0 && a[0].payload[0] == ERR_NO_TRANSFER &&
                                         a[0].payload[1] == MSG_DATA_LEAN);
    put16(p, 5);
    put32(p + 2, total);
    put16(p + 6, chunk);
    memcpy(p + 8, digest, LEAN_DIGEST_SIZE);
    request(MSG_BEGIN_LEAN, p, 12);
    expect("begin lean", answers(a, 8) == 1 && a[0].type == MSG_ACK && a[0].seq == seq);
    uint8_t d[DATA_OVERHEAD + 4] = {5, 0};
    request(MSG_DATA, d, sizeof d);
    expect("classic data to a lean transfer", answers(a, 8) == 1 && a[0].type == MSG_ERROR &&
                                                  a[0].payload[0] == ERR_NO_TRANSFER);
    int acked = 1;
    for (uint32_t k = chunks; k-- > 0;) {
        uint32_t off = k * chunk, n = total - off < chunk ? total - off : chunk;
        for (int again = 0; again < (k == 0 ? 2 : 1); again++) {
            lean_data(5, (uint16_t)k, store_new + off, (uint16_t)n);
            acked &= answers(a, 8) == 1 && a[0].type == MSG_ACK && a[0].seq == 0;
        }
    }
    expect("lean data acked", acked && chunks > 1);
    put16(p, 5);
    request(MSG_COMMIT, p, 2);
    expect("commit lean", answers(a, 8) == 1 && a[0].type == MSG_COMMITTED);
    expect("lean committed set", store_count() == 2);
}

void test_proto(void)
{
    frame a[8];
    uint8_t p[64];
    memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
    resets = 0;
    proto_init(&PORT);

    p[0] = 1;
    p[1] = 0;
    p[2] = 2; /* max_payload 512 */
    request(MSG_HELLO, p, 3);
    expect("hello", answers(a, 8) == 1 && a[0].type == MSG_HELLO_INFO && a[0].seq == seq &&
                        a[0].payload[3] == PROTO_WINDOW);

    /* Noise: a bad frame is answered with NAK(BAD_FRAME) at seq 0. */
    static const uint8_t noise[] = {0x05, 0x11, 0x22, 0x33, 0x44, 0x00};
    out.len = 0;
    proto_input(noise, sizeof noise);
    expect("bad frame", answers(a, 8) == 1 && a[0].type == MSG_NAK && a[0].seq == 0 &&
                            a[0].payload[6] == NAK_BAD_FRAME);

    /* Unknown request type and a short payload. */
    request(0x7E, p, 0);
    expect("unknown", answers(a, 8) == 1 && a[0].type == MSG_ERROR &&
                          a[0].payload[0] == ERR_UNKNOWN_MESSAGE);
    request(MSG_LIST, p, 1);
    expect("malformed", answers(a, 8) == 1 && a[0].type == MSG_ERROR &&
                            a[0].payload[0] == ERR_MALFORMED);

    /* DATA without a transfer; COMMIT without one. */
    memset(p, 0, 16);
    p[0] = 9;
    request(MSG_DATA, p, 10);
    expect("no transfer", answers(a, 8) == 1 && a[0].type == MSG_ERROR &&
                              a[0].payload[0] == ERR_NO_TRANSFER);

    /* Delete-all without the guard is refused; with it on an empty store: NOT_FOUND. */
    memset(p, 0, 10);
    p[0] = DELETE_ALL;
    request(MSG_DELETE, p, 10);
    expect("guard", answers(a, 8) == 1 && a[0].payload[0] == ERR_GUARD);
    p[6] = 0x41, p[7] = 0x4C, p[8] = 0x4C, p[9] = 0x21;
    request(MSG_DELETE, p, 10);
    expect("delete empty", answers(a, 8) == 1 && a[0].payload[0] == ERR_NOT_FOUND);

    /* Scope "one slot" with slot 0xFF must not turn into "the whole tag". */
    memset(p, 0, 10);
    p[0] = DELETE_SLOT;
    p[5] = 0xFF;
    request(MSG_DELETE, p, 10);
    expect("delete slot 0xff", answers(a, 8) == 1 && a[0].payload[0] == ERR_NOT_FOUND);
    p[0] = DELETE_ALL;
    p[6] = 0x41, p[7] = 0x4C, p[8] = 0x4C, p[9] = 0x21;
    request(MSG_DELETE, p, 10);
    expect("delete empty again", answers(a, 8) == 1 && a[0].payload[0] == ERR_NOT_FOUND);

    /* A retried request (same seq and type) is answered again, not executed again. */
    seq--;
    request(MSG_DELETE, p, 10);
    expect("retry", answers(a, 8) == 1 && a[0].payload[0] == ERR_NOT_FOUND);

    test_transfer(a);
    test_lean_transfer(a);

    /* RESET answers OK and then restarts the device. */
    request(MSG_RESET, p, 0);
    expect("reset", answers(a, 8) == 1 && a[0].type == MSG_OK && a[0].payload[0] == MSG_RESET &&
                        resets == 1);
}
