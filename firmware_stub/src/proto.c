#include "proto.h"

#include <string.h>

#include "bundle.h"
#include "flash.h"
#include "frame.h"
#include "messages.h"
#include "sha256.h"
#include "store.h"

_Static_assert(STORE_SEAMS >= 2u * PROTO_WINDOW + 1u, "staging cannot hold a window's seams");

#define SMALL_PAYLOAD (3u + MSG_MAX_TEXT) /* the longest ACK/NAK/ERROR for DATA */

typedef struct {
    uint8_t active;
    uint16_t id;
    uint32_t total;
    uint16_t chunk;
    uint8_t sha256[32];
    uint32_t cumulative; /* every byte below is held */
    uint32_t held;       /* bit i: chunk at cumulative + i * chunk is held */
    uint8_t lean;        /* begun by BEGIN_LEAN: sha256 holds LEAN_DIGEST_SIZE bytes */
} transfer;

static struct {
    const proto_port *port;
    /* The CSR made last (the port keeps its bytes), for KEYGEN with offset > 0. */
    const uint8_t *csr;
    uint16_t csr_len;
    uint32_t csr_tag;
    frame_rx rx;
    uint16_t host_max; /* the longest payload the host said it can receive */
    transfer xfer;
    /* Retries: the last non-DATA request and its answer, which stays in `tx`. */
    uint8_t have_last;
    uint16_t last_seq;
    uint8_t last_type;
    uint8_t last_resp;
    uint16_t last_len;
    uint8_t tx[FRAME_MAX_BODY + FRAME_CRC];
    uint8_t small[FRAME_HEADER + SMALL_PAYLOAD + FRAME_CRC];
    /* CHANGE_BAUD: the rate accepted, the rate before the first switch (0: not switched),
     * whether a good frame has come at the new rate yet, and bad frames in a row. */
    uint32_t baud_to;
    uint32_t baud_base;
    uint8_t baud_unconfirmed;
    uint8_t bad_run;
} P;

static struct {
    const uint32_t *rates;
    uint8_t count;
    uint32_t (*set_baud)(void *ctx, uint32_t baud);
} B; /* the port's UART rates, if it can switch (proto_set_baud_port) */

void proto_set_baud_port(const uint32_t *rates, uint8_t count,
                         uint32_t (*set_baud)(void *ctx, uint32_t baud))
{
    B.rates = rates;
    B.count = count;
    B.set_baud = set_baud;
}

static void send(uint8_t *body, uint8_t type, uint16_t seq, uint16_t len)
{
    frame_send(body, type, seq, len, P.port->put, P.port->ctx);
    if (P.port->flush)
        P.port->flush(P.port->ctx);
}

static void send_small_error(uint16_t seq, uint8_t code, uint8_t request, const char *detail)
{
    send(P.small, MSG_ERROR, seq,
         msg_build_error(P.small + FRAME_HEADER, code, request, detail));
}

void proto_init(const proto_port *port)
{
    memset(&P, 0, sizeof P);
    P.port = port;
    P.host_max = MSG_MIN_PAYLOAD;
    store_mount();
}

/* ---- answers built in P.tx; each handler returns the payload length ---- */

#define OUT (P.tx + FRAME_HEADER)

static uint16_t error(uint8_t *type, uint8_t code, uint8_t request, const char *detail)
{
    *type = MSG_ERROR;
    return msg_build_error(OUT, code, request, detail);
}

static uint16_t limit(void) { return P.host_max < FRAME_MAX_PAYLOAD ? P.host_max : FRAME_MAX_PAYLOAD; }

static uint32_t max_slot_size(void)
{
    uint32_t cap = store_max_slot_size();
    return cap < PROTO_MAX_SLOT_SIZE ? cap : PROTO_MAX_SLOT_SIZE;
}

static const proto_crypto *crypto(void)
{
#if PROTO_CRYPTO
    return P.port->crypto;
#else
    return NULL; /* the MCU builds: KEYGEN, SIGNED_ONLY and TLS_CHECK code is left out */
#endif
}

/* What this build can do: the crypto bits only where the port has the hook. */
static uint16_t features(void)
{
    uint16_t f = FEATURE_RESUME | FEATURE_READ;
    if (crypto() && crypto()->keygen)
        f |= FEATURE_KEYGEN;
    if (crypto() && crypto()->verify_bundle)
        f |= FEATURE_SIGNED_ONLY;
    if (crypto() && crypto()->tls_check)
        f |= FEATURE_TLS_CHECK;
    if (PROTO_LEAN)
        f |= FEATURE_LEAN;
    return f;
}

static uint16_t on_hello(const msg_request *r, uint8_t *type)
{
    if (r->u.hello.version != FRAME_VERSION)
        return error(type, ERR_UNSUPPORTED_VERSION, MSG_HELLO, "this device speaks version 1");
    uint16_t host = r->u.hello.max_payload;
    P.host_max = host < MSG_MIN_PAYLOAD ? MSG_MIN_PAYLOAD : host;
    msg_hello_info h = {
        .max_payload = FRAME_MAX_PAYLOAD,
        .window = PROTO_WINDOW,
        .max_bundle = store_staging_size(),
        .max_slots = PROTO_MAX_SLOTS,
        .max_tags = PROTO_MAX_TAGS,
        .max_slot_size = max_slot_size(),
        .features = features(),
        .uid = P.port->uid,
        .uid_len = P.port->uid_len,
        .firmware = P.port->firmware,
    };
    if (B.set_baud && B.count) {
        h.features |= FEATURE_BAUD;
        h.rates = B.rates;
        h.rate_count = B.count;
    }
    *type = MSG_HELLO_INFO;
    return msg_build_hello_info(OUT, &h);
}

static uint16_t on_change_baud(const msg_request *r, uint8_t *type)
{
    P.baud_to = 0;
    for (uint8_t i = 0; B.set_baud && i < B.count; i++)
        if (B.rates[i] == r->u.change_baud.baud)
            P.baud_to = r->u.change_baud.baud;
    if (!P.baud_to)
        return error(type, ERR_UNSUPPORTED, MSG_CHANGE_BAUD, "no switch to this rate");
    *type = MSG_OK;
    return msg_build_ok(OUT, MSG_CHANGE_BAUD);
}

/* After CHANGE_BAUD's OK has gone out at the old rate. */
static void switch_baud(void)
{
    uint32_t before = B.set_baud(P.port->ctx, P.baud_to);
    P.baud_unconfirmed = 1;
    P.bad_run = 0;
    if (!P.baud_base) {
        P.baud_base = before;
    } else if (P.baud_to == P.baud_base) { /* the host switched back */
        P.baud_base = 0;
        P.baud_unconfirmed = 0;
    }
}

/* While switched: a bad first frame at the new rate (the host could not follow), or two bad
 * frames in a row later (a host at the opening rate), take the UART back to that rate. */
static void watch_baud(int bad)
{
    if (!P.baud_base)
        return;
    P.bad_run = bad ? (uint8_t)(P.bad_run + 1) : 0;
    if (P.bad_run >= (P.baud_unconfirmed ? 1 : 2)) {
        B.set_baud(P.port->ctx, P.baud_base);
        P.baud_base = P.baud_to = 0;
        P.bad_run = 0;
    }
    P.baud_unconfirmed = 0;
}

static uint16_t ack(uint8_t *p, uint8_t *type)
{
    *type = MSG_ACK;
    return msg_build_ack(p, P.xfer.id, P.xfer.cumulative, P.xfer.held >> 1);
}

/* BEGIN, or BEGIN_LEAN: chunks up to LEAN_MAX_CHUNK as DATA_LEAN, named by 4 digest bytes. */
static uint16_t on_begin(const msg_request *r, uint8_t *type)
{
    const struct msg_begin *b = &r->u.begin;
    const uint8_t lean = PROTO_LEAN && r->type == MSG_BEGIN_LEAN; /* 0: no code for it */
    const uint8_t request = lean ? MSG_BEGIN_LEAN : MSG_BEGIN;
    const size_t digest = lean ? LEAN_DIGEST_SIZE : 32u;
    const uint32_t largest = lean ? LEAN_MAX_CHUNK : FRAME_MAX_PAYLOAD - DATA_OVERHEAD;
    if (b->transfer_id == 0 || b->total_size == 0 || b->chunk_size == 0 ||
        b->chunk_size > largest || (lean && (b->total_size - 1u) / b->chunk_size > 0xFFFFu))
        return error(type, ERR_MALFORMED, request, "bad transfer id, size or chunk size");
    if (b->total_size > store_staging_size())
        return error(type, ERR_TOO_LARGE, request, "bundle larger than max_bundle");
    transfer *x = &P.xfer;
    if (x->active && x->lean == lean && x->id == b->transfer_id && x->total == b->total_size &&
        x->chunk == b->chunk_size && memcmp(x->sha256, b->sha256, digest) == 0)
        return ack(OUT, type); /* resume: the ACK says what is already here */
    memset(x, 0, sizeof *x);
    if (store_staging_erase(b->total_size) != STORE_OK)
        return error(type, ERR_FLASH, request, "erasing the staging area failed");
    x->active = 1;
    x->lean = lean;
    x->id = b->transfer_id;
    x->total = b->total_size;
    x->chunk = b->chunk_size;
    memcpy(x->sha256, b->sha256, digest);
    return ack(OUT, type);
}

/* DATA, or DATA_LEAN (`request`; its offset field holds the chunk's index, its answers go
 * out at seq 0). */
static void on_data(const msg_request *r, uint16_t seq)
{
    const struct msg_data *d = &r->u.data;
    const uint8_t lean = PROTO_LEAN && r->type == MSG_DATA_LEAN; /* 0: no code for it */
    const uint8_t request = lean ? MSG_DATA_LEAN : MSG_DATA;
    transfer *x = &P.xfer;
    uint8_t *out = P.small + FRAME_HEADER;
    if (!x->active || x->id != d->transfer_id || (PROTO_LEAN && x->lean != lean)) {
        send_small_error(seq, ERR_NO_TRANSFER, request, "no such transfer");
        return;
    }
    const uint32_t offset = lean ? d->offset * x->chunk : d->offset;
    uint32_t expect = offset < x->total ? x->total - offset : 0;
    if (expect > x->chunk)
        expect = x->chunk;
    if (offset % x->chunk != 0 || offset >= x->total || d->chunk_len != expect) {
        send(P.small, MSG_NAK, seq, msg_build_nak(out, x->id, x->cumulative, NAK_BAD_OFFSET));
        return;
    }
    if (offset >= x->cumulative) {
        uint32_t index = (offset - x->cumulative) / x->chunk;
        if (index >= PROTO_WINDOW) {
            send(P.small, MSG_NAK, seq,
                 msg_build_nak(out, x->id, x->cumulative, NAK_OUT_OF_WINDOW));
            return;
        }
        /* Each staging byte is programmed once: a duplicate chunk is only acknowledged. */
        if (!(x->held & (1u << index))) {
            if (store_staging_program(offset, d->chunk, d->chunk_len) != STORE_OK) {
                send_small_error(seq, ERR_FLASH, request, "flash program failed");
                return;
            }
            x->held |= 1u << index;
        }
        while (x->held & 1u) {
            uint32_t step = x->total - x->cumulative < x->chunk ? x->total - x->cumulative
                                                                : x->chunk;
            x->cumulative += step;
            x->held >>= 1;
        }
    }
    uint8_t type;
    send(P.small, MSG_ACK, seq, ack(out, &type));
}

static int find_slot(uint32_t sec_tag, uint8_t slot, store_slot *out)
{
    for (uint16_t i = 0; i < store_count(); i++)
        if (store_get(i, out) == 0 && out->sec_tag == sec_tag && out->slot == slot)
            return 1;
    return 0;
}

static int hash_stored(const store_slot *s, uint8_t digest[32])
{
    uint8_t buf[64];
    sha256_ctx sha;
    sha256_init(&sha);
    for (uint32_t off = 0; off < s->length; off += sizeof buf) {
        uint32_t n = s->length - off < sizeof buf ? s->length - off : (uint32_t)sizeof buf;
        if (flash_read(s->data_addr + off, buf, n))
            return -1;
        sha256_update(&sha, buf, n);
    }
    sha256_final(&sha, digest);
    return 0;
}

static int tag_in_bundle(bundle_view *v, uint32_t sec_tag)
{
    return store_replaced_by(v, sec_tag, 0xFF, STORE_MERGE_REPLACE_TAGS);
}

/* What COMMIT refuses before touching the store: limits and what a native device holds. */
static uint16_t commit_limits(bundle_view *v, uint8_t *type)
{
    bundle_record rec, prev = {0};
    uint32_t slots = 0, tags = 0;
    for (uint16_t i = 0; bundle_next(v, &rec); i++) {
        if (rec.length > max_slot_size())
            return error(type, ERR_NO_SPACE, MSG_COMMIT, "slot larger than max_slot_size");
        if (i > 0 && rec.sec_tag == prev.sec_tag && rec.slot == prev.slot)
            return error(type, ERR_UNSUPPORTED, MSG_COMMIT, "one root_ca per sec_tag");
        if (i == 0 || rec.sec_tag != prev.sec_tag)
            tags++;
        slots++;
        prev = rec;
    }
    /* A tag in the bundle replaces the stored tag (but for a client_key the bundle lacks);
     * the other stored tags stay. A kept key's tag is in the bundle: counted already. */
    store_slot s;
    uint32_t last_tag = 0;
    int kept_any = 0;
    for (uint16_t i = 0; i < store_count(); i++) {
        if (store_get(i, &s) != 0)
            return error(type, ERR_FLASH, MSG_COMMIT, "flash read failed");
        if (store_replaced_by(v, s.sec_tag, s.slot, STORE_MERGE_KEEP_KEYS))
            continue;
        slots++;
        if ((!kept_any || s.sec_tag != last_tag) && !tag_in_bundle(v, s.sec_tag))
            tags++;
        kept_any = 1;
        last_tag = s.sec_tag;
    }
    if (slots > PROTO_MAX_SLOTS || tags > PROTO_MAX_TAGS)
        return error(type, ERR_NO_SPACE, MSG_COMMIT, "more slots or tags than the store holds");
    return 0;
}

/* SIGNED_ONLY: the trailer's key_id and r||s after the digest (docs/bundle-format.md). */
static uint16_t check_signature(bundle_view *v, uint8_t *type)
{
    uint8_t trailer[72];
    const char *detail = "bundle signature does not verify";
    if (!(v->flags & BUNDLE_FLAG_SIGNED))
        return error(type, ERR_BAD_SIGNATURE, MSG_COMMIT,
                     "this device applies signed bundles only");
    if (v->src->read(v->src->ctx, v->body_len + 32u, trailer, sizeof trailer))
        return error(type, ERR_FLASH, MSG_COMMIT, "flash read failed");
    if (crypto()->verify_bundle(crypto()->ctx, v->digest, trailer, trailer + 8, &detail))
        return error(type, ERR_BAD_SIGNATURE, MSG_COMMIT, detail);
    return 0;
}

static uint16_t on_commit(const msg_request *r, uint8_t *type)
{
    transfer *x = &P.xfer;
    if (!x->active || x->id != r->u.commit.transfer_id)
        return error(type, ERR_NO_TRANSFER, MSG_COMMIT, "no such transfer");
    if (x->cumulative < x->total)
        return error(type, ERR_INCOMPLETE, MSG_COMMIT, "");
    uint16_t id = x->id;
    uint8_t digest[32];
    x->active = 0; /* from here on, whatever the outcome, the transfer is over */
    {
        uint8_t buf[64];
        sha256_ctx sha;
        sha256_init(&sha);
        for (uint32_t off = 0; off < x->total; off += sizeof buf) {
            uint32_t n = x->total - off < sizeof buf ? x->total - off : (uint32_t)sizeof buf;
            if (store_staging_read(NULL, off, buf, n))
                return error(type, ERR_FLASH, MSG_COMMIT, "flash read failed");
            sha256_update(&sha, buf, n);
        }
        sha256_final(&sha, digest);
    }
    if (memcmp(digest, x->sha256, PROTO_LEAN && x->lean ? LEAN_DIGEST_SIZE : 32u) != 0)
        return error(type, ERR_DIGEST_MISMATCH, MSG_COMMIT, "bundle digest differs");
    bundle_src src = {store_staging_read, NULL, x->total};
    bundle_view v;
    bundle_err be = bundle_check(&src, &v);
    if (be != BUNDLE_OK)
        return error(type, ERR_BAD_BUNDLE, MSG_COMMIT, bundle_strerror(be));
    if (crypto() && crypto()->verify_bundle) {
        uint16_t refused = check_signature(&v, type);
        if (refused)
            return refused;
    }
    uint16_t refused = commit_limits(&v, type);
    if (refused)
        return refused;
    store_err se = store_apply(&v, STORE_MERGE_KEEP_KEYS);
    if (se == STORE_E_FULL || se == STORE_E_SLOTS)
        return error(type, ERR_NO_SPACE, MSG_COMMIT, "store full");
    if (se != STORE_OK)
        return error(type, ERR_FLASH, MSG_COMMIT, "flash write failed");
    /* set_digest over the bytes read back from flash, in the bundle's order. */
    sha256_ctx set;
    bundle_record rec;
    sha256_init(&set);
    v.index = 0;
    v.pos = v.first_record;
    while (bundle_next(&v, &rec)) {
        store_slot s;
        uint8_t d[32], key[5] = {(uint8_t)rec.sec_tag, (uint8_t)(rec.sec_tag >> 8),
                                  (uint8_t)(rec.sec_tag >> 16), (uint8_t)(rec.sec_tag >> 24),
                                  rec.slot};
        if (!find_slot(rec.sec_tag, rec.slot, &s) || hash_stored(&s, d) != 0)
            return error(type, ERR_FLASH, MSG_COMMIT, "stored slot missing after commit");
        sha256_update(&set, key, sizeof key);
        sha256_update(&set, d, 32);
    }
    sha256_final(&set, digest);
    *type = MSG_COMMITTED;
    return msg_build_committed(OUT, id, v.count, digest);
}

static uint16_t on_list(const msg_request *r, uint8_t *type)
{
    uint16_t total = store_count();
    uint16_t start = r->u.list.start;
    uint16_t per_page = (uint16_t)((limit() - 5u) / LIST_ENTRY_SIZE);
    uint16_t len = 5;
    uint8_t count = 0;
    for (uint16_t i = start; i < total && count < per_page; i++, count++) {
        store_slot s;
        if (store_get(i, &s) != 0)
            return error(type, ERR_FLASH, MSG_LIST, "flash read failed");
        len = (uint16_t)(len + msg_put_list_entry(OUT + len, s.sec_tag, s.slot, s.length,
                                                  s.sha256));
    }
    msg_build_list_page(OUT, total, start, count);
    *type = MSG_LIST_PAGE;
    return len;
}

static uint16_t on_read(const msg_request *r, uint8_t *type)
{
    const struct msg_read *q = &r->u.read;
    if (q->slot > 1) /* only root_ca and client_cert are ever read back */
        return error(type, ERR_FORBIDDEN, MSG_READ, "only certificates can be read");
    store_slot s;
    if (!find_slot(q->sec_tag, q->slot, &s))
        return error(type, ERR_NOT_FOUND, MSG_READ, "no such slot");
    if (q->offset > s.length)
        return error(type, ERR_MALFORMED, MSG_READ, "offset beyond the slot");
    uint32_t n = s.length - q->offset;
    if (n > q->max_len)
        n = q->max_len;
    if (n > limit() - 13u)
        n = limit() - 13u;
    uint16_t head = msg_build_read_data(OUT, q->sec_tag, q->slot, s.length, q->offset);
    if (flash_read(s.data_addr + q->offset, OUT + head, n))
        return error(type, ERR_FLASH, MSG_READ, "flash read failed");
    *type = MSG_READ_DATA;
    return (uint16_t)(head + n);
}

/* Out of line for the same reason as on_tls_check (the subject buffer). */
static __attribute__((noinline)) uint16_t on_keygen(const msg_request *r, uint8_t *type)
{
    const uint32_t tag = r->u.keygen.sec_tag;
    uint16_t offset = r->u.keygen.offset;
    if (!crypto() || !crypto()->keygen)
        return error(type, ERR_UNSUPPORTED, MSG_KEYGEN, "no key generation on this device");
    if (offset == 0) {
        /* The subject as an X.509 name: CN=<subject>, a full name as given, or CN=<uid>. */
        char subject[8 + 2 * 32 + 256];
        const char *detail = "key generation failed";
        size_t n = r->u.keygen.subject_len;
        if (n == 0) {
            static const char hex[] = "0123456789abcdef";
            memcpy(subject, "CN=", 3);
            for (uint8_t i = 0; i < P.port->uid_len; i++) {
                subject[3 + 2 * i] = hex[P.port->uid[i] >> 4];
                subject[4 + 2 * i] = hex[P.port->uid[i] & 15u];
            }
            subject[3 + 2 * P.port->uid_len] = 0;
        } else {
            int named = memchr(r->u.keygen.subject, '=', n) != NULL;
            memcpy(subject, "CN=", named ? 0 : 3);
            memcpy(subject + (named ? 0 : 3), r->u.keygen.subject, n);
            subject[n + (named ? 0 : 3)] = 0;
        }
        P.csr = NULL;
        int code = crypto()->keygen(crypto()->ctx, tag, subject, &P.csr, &P.csr_len, &detail);
        if (code)
            return error(type, (uint8_t)code, MSG_KEYGEN, detail);
        P.csr_tag = tag;
    } else if (!P.csr || P.csr_tag != tag) {
        return error(type, ERR_NOT_FOUND, MSG_KEYGEN, "no CSR made for this sec_tag");
    }
    if (offset > P.csr_len)
        return error(type, ERR_MALFORMED, MSG_KEYGEN, "offset beyond the CSR");
    uint16_t n = (uint16_t)(P.csr_len - offset);
    if (n > limit() - 8u)
        n = (uint16_t)(limit() - 8u);
    uint16_t head = msg_build_csr(OUT, tag, P.csr_len, offset);
    memcpy(OUT + head, P.csr + offset, n);
    *type = MSG_CSR;
    return (uint16_t)(head + n);
}

/* Kept out of line: the request's copy only takes stack where a port runs TLS. */
static __attribute__((noinline)) uint16_t on_tls_check(const msg_request *r, uint8_t *type)
{
    const struct msg_tls_check *q = &r->u.tls;
    if (!crypto() || !crypto()->tls_check)
        return error(type, ERR_UNSUPPORTED, MSG_TLS_CHECK, "no TLS on this device");
    proto_tls_request req = {q->sec_tag, q->port, q->tls, q->timeout_ms, {0}};
    memcpy(req.host, q->host, q->host_len);
    const char *detail = "TLS check failed";
    uint16_t len = 0;
    int code = crypto()->tls_check(crypto()->ctx, &req, OUT, limit(), &len, &detail);
    if (code)
        return error(type, (uint8_t)code, MSG_TLS_CHECK, detail);
    *type = MSG_TLS_RESULT;
    return len;
}

static uint16_t on_delete(const msg_request *r, uint8_t *type)
{
    const struct msg_delete *d = &r->u.del;
    if (d->scope > DELETE_ALL)
        return error(type, ERR_MALFORMED, MSG_DELETE, "unknown delete scope");
    if (d->scope == DELETE_ALL && d->guard != DELETE_ALL_GUARD)
        return error(type, ERR_GUARD, MSG_DELETE, "delete-all needs the guard value");
    if (d->scope == DELETE_SLOT && d->slot >= BUNDLE_SLOT_TYPES)
        return error(type, ERR_NOT_FOUND, MSG_DELETE, "no such slot type"); /* 0xFF = tag */
    uint16_t found = 0;
    store_err e = store_delete(d->sec_tag, d->scope == DELETE_TAG ? 0xFF : d->slot,
                               d->scope == DELETE_ALL, &found);
    if (e != STORE_OK)
        return error(type, ERR_FLASH, MSG_DELETE, "flash write failed");
    if (found == 0)
        return error(type, ERR_NOT_FOUND, MSG_DELETE, "nothing matched");
    *type = MSG_OK;
    return msg_build_ok(OUT, MSG_DELETE);
}

static void on_frame(const frame *f)
{
    msg_request r;
#if PROTO_LEAN
    if (f->type == FRAME_LEAN_DATA && f->version != FRAME_VERSION) { /* frame.c: no header */
        if (msg_parse_request(MSG_DATA_LEAN, f->payload, f->payload_len, &r) != MSG_PARSE_OK)
            send_small_error(0, ERR_MALFORMED, MSG_DATA_LEAN, "payload does not parse");
        else
            on_data(&r, 0);
        return;
    }
#endif
    if (f->version != FRAME_VERSION) {
        send_small_error(f->seq, ERR_UNSUPPORTED_VERSION, f->type, "protocol version 1 only");
        return;
    }
    if (f->length != f->payload_len) {
        send_small_error(f->seq, ERR_MALFORMED, f->type, "length field differs from payload");
        return;
    }
    msg_parse pr = msg_parse_request(f->type, f->payload, f->payload_len, &r);
    if (pr == MSG_PARSE_UNKNOWN) {
        send_small_error(f->seq, ERR_UNKNOWN_MESSAGE, f->type, "unknown request");
        return;
    }
    if (pr != MSG_PARSE_OK || (PROTO_LEAN && r.type == MSG_DATA_LEAN)) { /* never behind a header */
        send_small_error(f->seq, ERR_MALFORMED, f->type, "payload does not parse");
        return;
    }
    if (r.type == MSG_DATA) {
        on_data(&r, f->seq);
        return;
    }
    if (r.type != MSG_HELLO && P.have_last && P.last_seq == f->seq && P.last_type == r.type) {
        send(P.tx, P.last_resp, f->seq, P.last_len); /* a retry: answer again, do not redo */
        if (r.type == MSG_CHANGE_BAUD && P.last_resp == MSG_OK && P.baud_to)
            switch_baud();
        return;
    }
    uint8_t type = MSG_ERROR;
    uint16_t len;
    switch (r.type) {
    case MSG_HELLO: len = on_hello(&r, &type); break;
    case MSG_BEGIN: len = on_begin(&r, &type); break;
#if PROTO_LEAN
    case MSG_BEGIN_LEAN: len = on_begin(&r, &type); break;
#endif
    case MSG_COMMIT: len = on_commit(&r, &type); break;
    case MSG_LIST: len = on_list(&r, &type); break;
    case MSG_READ: len = on_read(&r, &type); break;
    case MSG_DELETE: len = on_delete(&r, &type); break;
    case MSG_KEYGEN: len = on_keygen(&r, &type); break;
    case MSG_TLS_CHECK: len = on_tls_check(&r, &type); break;
    case MSG_CHANGE_BAUD: len = on_change_baud(&r, &type); break;
    case MSG_RESET:
    default:
        type = MSG_OK;
        len = msg_build_ok(OUT, MSG_RESET);
        break;
    }
    /* A new session starts with HELLO: forget the previous session's last request. */
    P.have_last = r.type != MSG_HELLO;
    P.last_seq = f->seq;
    P.last_type = r.type;
    P.last_resp = type;
    P.last_len = len;
    send(P.tx, type, f->seq, len);
    if (r.type == MSG_RESET && P.port->reset)
        P.port->reset(P.port->ctx);
    if (r.type == MSG_CHANGE_BAUD && type == MSG_OK)
        switch_baud();
}

void proto_input(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        frame f;
        frame_event ev = frame_rx_byte(&P.rx, data[i], &f);
        if (ev != FRAME_NONE)
            watch_baud(ev == FRAME_BAD);
        if (ev == FRAME_GOOD) {
            on_frame(&f);
        } else if (ev == FRAME_BAD) {
            uint32_t at = P.xfer.active ? P.xfer.cumulative : 0;
            uint16_t id = P.xfer.active ? P.xfer.id : 0;
            send(P.small, MSG_NAK, 0, msg_build_nak(P.small + FRAME_HEADER, id, at, NAK_BAD_FRAME));
        }
    }
}
