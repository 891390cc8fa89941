#include "bundle.h"

#include <string.h>

#include "crc32.h"
#include "sha256.h"

#define CHUNK 64u

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* A cursor that hashes every byte it reads, so one pass checks the SHA-256 trailer. */
typedef struct {
    const bundle_src *src;
    uint32_t pos;
    sha256_ctx sha;
} cursor;

static bundle_err take(cursor *c, void *buf, uint32_t n)
{
    if (n > c->src->size - c->pos)
        return BUNDLE_E_TRUNCATED;
    if (c->src->read(c->src->ctx, c->pos, buf, n) != 0)
        return BUNDLE_E_IO;
    sha256_update(&c->sha, buf, n);
    c->pos += n;
    return BUNDLE_OK;
}

static int printable_ascii(const uint8_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7E)
            return 0;
    return 1;
}

/* Which encodings and record flags each slot type may carry (format.py ALLOWED_*). */
static bundle_err record_fault(const uint8_t head[BUNDLE_RECORD_HEAD])
{
    uint8_t slot = head[4], enc = head[5];
    uint16_t flags = le16(head + 6);
    uint32_t length = le32(head + 8);
    if (le32(head) > BUNDLE_MAX_SEC_TAG)
        return BUNDLE_E_SEC_TAG;
    if (slot >= BUNDLE_SLOT_TYPES)
        return BUNDLE_E_SLOT;
    int opaque = slot > BUNDLE_SLOT_CLIENT_KEY; /* key_password, psk, psk_identity */
    if (enc >= BUNDLE_ENCODINGS || (opaque != (enc == BUNDLE_ENC_RAW)))
        return BUNDLE_E_ENCODING;
    uint16_t allowed = slot == BUNDLE_SLOT_CLIENT_KEY ? BUNDLE_REC_ENCRYPTED : 0u;
    if (flags & (uint16_t)~allowed)
        return BUNDLE_E_REC_FLAGS;
    if (length < 1 || length > BUNDLE_MAX_PAYLOAD)
        return BUNDLE_E_LENGTH;
    return BUNDLE_OK;
}

/* Python compares payload bytes lexicographically (a prefix sorts first). */
static int payload_cmp(const bundle_src *src, const bundle_record *a, const bundle_record *b,
                       bundle_err *err)
{
    uint8_t x[CHUNK], y[CHUNK];
    uint32_t common = a->length < b->length ? a->length : b->length;
    for (uint32_t off = 0; off < common; off += CHUNK) {
        uint32_t n = common - off < CHUNK ? common - off : CHUNK;
        if (src->read(src->ctx, a->payload_off + off, x, n) ||
            src->read(src->ctx, b->payload_off + off, y, n)) {
            *err = BUNDLE_E_IO;
            return 0;
        }
        int c = memcmp(x, y, n);
        if (c)
            return c;
    }
    return (a->length > b->length) - (a->length < b->length);
}

static bundle_err check_structure(const bundle_src *src, bundle_view *v)
{
    cursor c = {.src = src, .pos = 0};
    uint8_t buf[255]; /* the longest device id a u8 prefix can announce */
    bundle_err e;

    sha256_init(&c.sha);
    if (src->size < 4)
        return BUNDLE_E_MAGIC;
    if ((e = take(&c, buf, 4)) != BUNDLE_OK)
        return e;
    if (memcmp(buf, BUNDLE_MAGIC, 4) != 0)
        return BUNDLE_E_MAGIC;
    if ((e = take(&c, buf, 1)) != BUNDLE_OK)
        return e;
    if (buf[0] != BUNDLE_VERSION)
        return BUNDLE_E_VERSION;
    if ((e = take(&c, buf, 2)) != BUNDLE_OK)
        return e;
    v->flags = buf[0];
    uint8_t id_len = buf[1];
    if ((e = take(&c, buf, id_len)) != BUNDLE_OK)
        return e;
    int id_ok = printable_ascii(buf, id_len);
    if ((e = take(&c, buf, 2)) != BUNDLE_OK)
        return e;
    v->count = le16(buf);
    if (v->flags & ~BUNDLE_FLAG_SIGNED)
        return BUNDLE_E_FLAGS;
    if (id_len > BUNDLE_MAX_DEVICE_ID || !id_ok)
        return BUNDLE_E_DEVICE_ID;
    if (v->count > BUNDLE_MAX_RECORDS)
        return BUNDLE_E_COUNT;
    v->first_record = c.pos;

    for (uint16_t i = 0; i < v->count; i++) {
        uint8_t head[BUNDLE_RECORD_HEAD];
        if ((e = take(&c, head, sizeof head)) != BUNDLE_OK)
            return e;
        if ((e = record_fault(head)) != BUNDLE_OK)
            return e;
        uint32_t length = le32(head + 8);
        uint32_t crc = crc32_update(0, head, sizeof head);
        for (uint32_t done = 0; done < length;) {
            uint32_t n = length - done < sizeof buf ? length - done : (uint32_t)sizeof buf;
            if ((e = take(&c, buf, n)) != BUNDLE_OK)
                return e;
            crc = crc32_update(crc, buf, n);
            done += n;
        }
        if ((e = take(&c, buf, 4)) != BUNDLE_OK)
            return e;
        if (le32(buf) != crc)
            return BUNDLE_E_CRC;
    }
    v->body_len = c.pos;
    sha256_final(&c.sha, v->digest);
    if (src->size - c.pos < 32)
        return BUNDLE_E_TRUNCATED;
    if (src->read(src->ctx, c.pos, buf, 32) != 0)
        return BUNDLE_E_IO;
    if (memcmp(buf, v->digest, 32) != 0)
        return BUNDLE_E_DIGEST;
    uint32_t end = c.pos + 32u + ((v->flags & BUNDLE_FLAG_SIGNED) ? 72u : 0u);
    if (src->size < end)
        return BUNDLE_E_TRUNCATED;
    if (src->size > end)
        return BUNDLE_E_TRAILING;
    return BUNDLE_OK;
}

static bundle_err read_record(bundle_view *v, bundle_record *rec)
{
    uint8_t head[BUNDLE_RECORD_HEAD];
    if (v->src->read(v->src->ctx, v->pos, head, sizeof head) != 0)
        return BUNDLE_E_IO;
    rec->sec_tag = le32(head);
    rec->slot = head[4];
    rec->encoding = head[5];
    rec->flags = le16(head + 6);
    rec->length = le32(head + 8);
    rec->payload_off = v->pos + BUNDLE_RECORD_HEAD;
    v->pos = rec->payload_off + rec->length + 4u;
    v->index++;
    return BUNDLE_OK;
}

static void rewind_view(bundle_view *v)
{
    v->index = 0;
    v->pos = v->first_record;
}

static int same_key(const bundle_record *a, const bundle_record *b)
{
    return a->sec_tag == b->sec_tag && a->slot == b->slot && a->slot != BUNDLE_SLOT_ROOT_CA;
}

/* Any two records with one (sec_tag, slot) other than root_ca, wherever they are. */
static bundle_err find_duplicate(bundle_view *v)
{
    bundle_record a, b;
    for (uint16_t i = 0; i < v->count; i++) {
        v->index = 0;
        v->pos = v->first_record;
        for (uint16_t k = 0; k <= i; k++)
            if (read_record(v, &a) != BUNDLE_OK)
                return BUNDLE_E_IO;
        while (v->index < v->count) {
            if (read_record(v, &b) != BUNDLE_OK)
                return BUNDLE_E_IO;
            if (same_key(&a, &b))
                return BUNDLE_E_DUPLICATE;
        }
    }
    return BUNDLE_OK;
}

bundle_err bundle_check(const bundle_src *src, bundle_view *v)
{
    memset(v, 0, sizeof *v);
    v->src = src;
    bundle_err e = check_structure(src, v);
    if (e != BUNDLE_OK)
        return e;
    /* Canonical order is (sec_tag, slot, payload). Python reports a duplicate before a
     * misordering, so an order fault triggers a full duplicate scan first. */
    bundle_record prev = {0}, rec;
    bundle_err order = BUNDLE_OK;
    rewind_view(v);
    for (uint16_t i = 0; i < v->count && order == BUNDLE_OK; i++) {
        if ((e = read_record(v, &rec)) != BUNDLE_OK)
            return e;
        if (i > 0) {
            if (same_key(&prev, &rec))
                order = BUNDLE_E_DUPLICATE;
            else if (rec.sec_tag < prev.sec_tag ||
                     (rec.sec_tag == prev.sec_tag && rec.slot < prev.slot))
                order = BUNDLE_E_ORDER;
            else if (rec.sec_tag == prev.sec_tag && rec.slot == prev.slot) {
                bundle_err io = BUNDLE_OK;
                int cmp = payload_cmp(src, &prev, &rec, &io);
                if (io != BUNDLE_OK)
                    return io;
                if (cmp > 0)
                    order = BUNDLE_E_ORDER;
            }
        }
        prev = rec;
    }
    if (order == BUNDLE_E_ORDER && (e = find_duplicate(v)) != BUNDLE_OK)
        order = e;
    rewind_view(v);
    return order;
}

int bundle_next(bundle_view *v, bundle_record *rec)
{
    if (v->index >= v->count)
        return 0;
    return read_record(v, rec) == BUNDLE_OK;
}

const char *bundle_strerror(bundle_err err)
{
    switch (err) {
    case BUNDLE_OK: return "ok";
    case BUNDLE_E_MAGIC: return "not a provision bundle (bad magic)";
    case BUNDLE_E_VERSION: return "unsupported bundle format version";
    case BUNDLE_E_TRUNCATED: return "truncated bundle";
    case BUNDLE_E_TRAILING: return "trailing bytes after the bundle";
    case BUNDLE_E_FLAGS: return "unknown header flags";
    case BUNDLE_E_DEVICE_ID: return "bad device id";
    case BUNDLE_E_COUNT: return "too many records";
    case BUNDLE_E_SEC_TAG: return "sec_tag out of range";
    case BUNDLE_E_LENGTH: return "item empty or too large";
    case BUNDLE_E_REC_FLAGS: return "record flags not allowed";
    case BUNDLE_E_CRC: return "record CRC32 mismatch";
    case BUNDLE_E_DIGEST: return "SHA-256 digest mismatch";
    case BUNDLE_E_SLOT: return "unknown slot type";
    case BUNDLE_E_ENCODING: return "unknown encoding";
    case BUNDLE_E_ORDER: return "records not in canonical order";
    case BUNDLE_E_DUPLICATE: return "duplicate slot";
    case BUNDLE_E_IO: return "read error";
    }
    return "unknown error";
}

const char *bundle_code(bundle_err err)
{
    switch (err) {
    case BUNDLE_OK: return "ok";
    case BUNDLE_E_MAGIC: return "bundle.magic";
    case BUNDLE_E_VERSION: return "bundle.version";
    case BUNDLE_E_FLAGS: return "bundle.flags";
    case BUNDLE_E_DEVICE_ID: return "bundle.device_id";
    case BUNDLE_E_COUNT: return "bundle.count";
    case BUNDLE_E_TRUNCATED: return "bundle.truncated";
    case BUNDLE_E_TRAILING: return "bundle.trailing";
    case BUNDLE_E_SEC_TAG: return "bundle.sec_tag";
    case BUNDLE_E_SLOT: return "bundle.slot";
    case BUNDLE_E_ENCODING: return "bundle.encoding";
    case BUNDLE_E_REC_FLAGS: return "bundle.record_flags";
    case BUNDLE_E_LENGTH: return "bundle.length";
    case BUNDLE_E_CRC: return "bundle.crc";
    case BUNDLE_E_DIGEST: return "bundle.digest";
    case BUNDLE_E_ORDER: return "bundle.order";
    case BUNDLE_E_DUPLICATE: return "bundle.duplicate";
    case BUNDLE_E_IO: return "bundle.io";
    }
    return "bundle.unknown";
}
