#include "messages.h"

#include "frame.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

/* Python decodes the subject as strict UTF-8; a device must refuse what Python refuses. */
static int utf8_ok(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        uint32_t need, cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1Fu;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0Fu;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07u;
        } else {
            return 0;
        }
        if (need > n - i - 1)
            return 0;
        for (uint32_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += need + 1;
    }
    return 1;
}

msg_parse msg_parse_request(uint8_t type, const uint8_t *p, uint16_t n, msg_request *out)
{
    memset(out, 0, sizeof *out);
    out->type = type;
    switch (type) {
    case MSG_HELLO:
        if (n != 3)
            return MSG_PARSE_MALFORMED;
        out->u.hello.version = p[0];
        out->u.hello.max_payload = rd16(p + 1);
        return MSG_PARSE_OK;
    case MSG_CHANGE_BAUD:
        if (n != 4)
            return MSG_PARSE_MALFORMED;
        out->u.change_baud.baud = rd32(p);
        return MSG_PARSE_OK;
    case MSG_BEGIN:
        if (n != 40)
            return MSG_PARSE_MALFORMED;
        out->u.begin.transfer_id = rd16(p);
        out->u.begin.total_size = rd32(p + 2);
        out->u.begin.chunk_size = rd16(p + 6);
        memcpy(out->u.begin.sha256, p + 8, 32);
        return MSG_PARSE_OK;
    case MSG_DATA:
        if (n < DATA_OVERHEAD)
            return MSG_PARSE_MALFORMED;
        out->u.data.transfer_id = rd16(p);
        out->u.data.offset = rd32(p + 2);
        out->u.data.chunk = p + DATA_OVERHEAD;
        out->u.data.chunk_len = (uint16_t)(n - DATA_OVERHEAD);
        return MSG_PARSE_OK;
#if PROTO_LEAN
    case MSG_BEGIN_LEAN:
        if (n != 8 + LEAN_DIGEST_SIZE)
            return MSG_PARSE_MALFORMED;
        out->u.begin.transfer_id = rd16(p);
        out->u.begin.total_size = rd32(p + 2);
        out->u.begin.chunk_size = rd16(p + 6);
        memcpy(out->u.begin.sha256, p + 8, LEAN_DIGEST_SIZE);
        return MSG_PARSE_OK;
    case MSG_DATA_LEAN: /* `p` is the body after its type byte */
        if (n < FRAME_LEAN_HEADER)
            return MSG_PARSE_MALFORMED;
        out->u.data.transfer_id = rd16(p);
        out->u.data.offset = rd16(p + 2);
        out->u.data.chunk = p + 4;
        out->u.data.chunk_len = (uint16_t)(n - 4);
        return MSG_PARSE_OK;
#endif
    case MSG_COMMIT:
        if (n != 2)
            return MSG_PARSE_MALFORMED;
        out->u.commit.transfer_id = rd16(p);
        return MSG_PARSE_OK;
    case MSG_LIST:
        if (n != 2)
            return MSG_PARSE_MALFORMED;
        out->u.list.start = rd16(p);
        return MSG_PARSE_OK;
    case MSG_READ:
        if (n != 11)
            return MSG_PARSE_MALFORMED;
        out->u.read.sec_tag = rd32(p);
        out->u.read.slot = p[4];
        out->u.read.offset = rd32(p + 5);
        out->u.read.max_len = rd16(p + 9);
        return MSG_PARSE_OK;
    case MSG_DELETE:
        if (n != 10)
            return MSG_PARSE_MALFORMED;
        out->u.del.scope = p[0];
        out->u.del.sec_tag = rd32(p + 1);
        out->u.del.slot = p[5];
        out->u.del.guard = rd32(p + 6);
        return MSG_PARSE_OK;
    case MSG_KEYGEN:
        if (n < 7 || p[6] != n - 7 || !utf8_ok(p + 7, p[6]))
            return MSG_PARSE_MALFORMED;
        out->u.keygen.sec_tag = rd32(p);
        out->u.keygen.offset = rd16(p + 4);
        out->u.keygen.subject_len = p[6];
        out->u.keygen.subject = p + 7;
        return MSG_PARSE_OK;
    case MSG_RESET:
        return n == 0 ? MSG_PARSE_OK : MSG_PARSE_MALFORMED;
    case MSG_TLS_CHECK:
        if (n < 10 || p[9] != n - 10 || !utf8_ok(p + 10, p[9]))
            return MSG_PARSE_MALFORMED;
        out->u.tls.sec_tag = rd32(p);
        out->u.tls.port = rd16(p + 4);
        out->u.tls.tls = p[6];
        out->u.tls.timeout_ms = rd16(p + 7);
        out->u.tls.host_len = p[9];
        out->u.tls.host = p + 10;
        return MSG_PARSE_OK;
    default:
        return MSG_PARSE_UNKNOWN;
    }
}

uint16_t msg_build_ok(uint8_t *p, uint8_t request)
{
    p[0] = request;
    return 1;
}

uint16_t msg_build_hello_info(uint8_t *p, const msg_hello_info *h)
{
    uint8_t *q = p;
    *q++ = 1;
    q = wr16(q, h->max_payload);
    *q++ = h->window;
    q = wr32(q, h->max_bundle);
    q = wr16(q, h->max_slots);
    q = wr16(q, h->max_tags);
    q = wr32(q, h->max_slot_size);
    q = wr16(q, h->features);
    *q++ = h->uid_len;
    memcpy(q, h->uid, h->uid_len);
    q += h->uid_len;
    size_t fw = strlen(h->firmware);
    if (fw > MSG_MAX_TEXT)
        fw = MSG_MAX_TEXT;
    *q++ = (uint8_t)fw;
    memcpy(q, h->firmware, fw);
    q += fw;
    if (h->features & FEATURE_BAUD) {
        uint8_t n = h->rate_count < MSG_MAX_RATES ? h->rate_count : MSG_MAX_RATES;
        *q++ = n;
        for (uint8_t i = 0; i < n; i++)
            q = wr32(q, h->rates[i]);
    }
    return (uint16_t)(q - p);
}

uint16_t msg_build_ack(uint8_t *p, uint16_t transfer_id, uint32_t cumulative, uint32_t sack)
{
    wr32(wr32(wr16(p, transfer_id), cumulative), sack);
    return 10;
}

uint16_t msg_build_nak(uint8_t *p, uint16_t transfer_id, uint32_t offset, uint8_t reason)
{
    wr32(wr16(p, transfer_id), offset)[0] = reason;
    return 7;
}

uint16_t msg_build_committed(uint8_t *p, uint16_t transfer_id, uint16_t slot_count,
                             const uint8_t digest[32])
{
    memcpy(wr16(wr16(p, transfer_id), slot_count), digest, 32);
    return 36;
}

uint16_t msg_build_list_page(uint8_t *p, uint16_t total, uint16_t start, uint8_t count)
{
    wr16(wr16(p, total), start)[0] = count;
    return 5;
}

uint16_t msg_put_list_entry(uint8_t *p, uint32_t sec_tag, uint8_t slot, uint32_t size,
                            const uint8_t sha256[32])
{
    uint8_t *q = wr32(p, sec_tag);
    *q++ = slot;
    memcpy(wr32(q, size), sha256, 32);
    return LIST_ENTRY_SIZE;
}

uint16_t msg_build_read_data(uint8_t *p, uint32_t sec_tag, uint8_t slot, uint32_t total,
                             uint32_t offset)
{
    uint8_t *q = wr32(p, sec_tag);
    *q++ = slot;
    wr32(wr32(q, total), offset);
    return 13;
}

uint16_t msg_build_csr(uint8_t *p, uint32_t sec_tag, uint16_t total, uint16_t offset)
{
    wr16(wr16(wr32(p, sec_tag), total), offset);
    return 8;
}

uint16_t msg_build_error(uint8_t *p, uint8_t code, uint8_t request, const char *detail)
{
    size_t n = strlen(detail);
    if (n > MSG_MAX_TEXT)
        n = MSG_MAX_TEXT;
    p[0] = code;
    p[1] = request;
    p[2] = (uint8_t)n;
    memcpy(p + 3, detail, n);
    return (uint16_t)(3 + n);
}

/* u8 length + text, cut to 255 bytes and to what is left of the payload. */
static uint16_t put_text(uint8_t *p, uint16_t at, uint16_t cap, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (at >= cap)
        return at;
    if (n > 255)
        n = 255;
    if (n > (size_t)(cap - at - 1u))
        n = (size_t)(cap - at - 1u);
    while (n > 0 && text && text[n] && ((uint8_t)text[n] & 0xC0u) == 0x80u)
        n--; /* cut on a UTF-8 character boundary */
    p[at] = (uint8_t)n;
    memcpy(p + at + 1, text ? text : "", n);
    return (uint16_t)(at + 1u + n);
}

uint16_t msg_build_tls_result(uint8_t *p, uint16_t cap, const msg_tls_result *r)
{
    const char *texts[5] = {r->version, r->cipher, r->accepted_as, r->evidence, r->detail};
    uint8_t count = r->chain_count < TLS_RESULT_MAX_CHAIN ? r->chain_count : TLS_RESULT_MAX_CHAIN;
    /* Room for the fixed part, an empty text each and the chain count first. */
    uint16_t fixed = 7u + 5u + 1u + count;
    if (cap < fixed)
        return 0;
    wr32(p, r->sec_tag);
    p[4] = r->failure;
    p[5] = r->server_verified;
    p[6] = r->client_accepted;
    uint16_t at = 7;
    for (int i = 0; i < 5; i++) /* keep one byte per later field */
        at = put_text(p, at, (uint16_t)(cap - (4 - i) - 1 - count), texts[i]);
    p[at++] = count;
    for (uint8_t i = 0; i < count; i++)
        at = put_text(p, at, (uint16_t)(cap - (count - 1 - i)), r->chain[i]);
    return at;
}
