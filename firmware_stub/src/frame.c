#include "frame.h"

#include "crc32.h"

void frame_rx_reset(frame_rx *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

frame_event frame_rx_byte(frame_rx *rx, uint8_t byte, frame *out)
{
    if (byte != 0) {
        /* Past the limit the bytes are dropped as they come: memory stays bounded. */
        if (rx->len < sizeof rx->buf)
            rx->buf[rx->len++] = byte;
        else
            rx->overflow = 1;
        return FRAME_NONE;
    }
    uint16_t len = rx->len;
    uint8_t overflow = rx->overflow;
    frame_rx_reset(rx);
    if (overflow)
        return FRAME_BAD;
    if (len == 0)
        return FRAME_NONE;
    long n = cobs_decode_inplace(rx->buf, len);
    if (n < (long)(FRAME_CRC + 1))
        return FRAME_BAD;
    size_t body = (size_t)n - FRAME_CRC;
    const uint8_t *c = rx->buf + body;
    uint32_t crc = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
                   (uint32_t)c[3] << 24;
    if (crc32_update(0, rx->buf, body) != crc)
        return FRAME_BAD;
#if PROTO_LEAN
    out->body = rx->buf;
    out->body_len = (uint16_t)body;
    if (body > FRAME_LEAN_HEADER && rx->buf[0] == FRAME_LEAN_DATA) {
        out->version = 0; /* no header: proto takes it by its first byte */
        out->type = FRAME_LEAN_DATA;
        out->seq = out->length = 0;
        out->payload = rx->buf + 1;
        out->payload_len = (uint16_t)(body - 1);
        return FRAME_GOOD;
    }
#endif
    if (body < FRAME_HEADER)
        return FRAME_BAD;
    out->version = rx->buf[0];
    out->type = rx->buf[1];
    out->seq = (uint16_t)(rx->buf[2] | rx->buf[3] << 8);
    out->length = (uint16_t)(rx->buf[4] | rx->buf[5] << 8);
    out->payload = rx->buf + FRAME_HEADER;
    out->payload_len = (uint16_t)(body - FRAME_HEADER);
    return FRAME_GOOD;
}

size_t frame_send(uint8_t *body, uint8_t type, uint16_t seq, uint16_t payload_len,
                  cobs_sink sink, void *ctx)
{
    size_t n = FRAME_HEADER + payload_len;
    body[0] = FRAME_VERSION;
    body[1] = type;
    body[2] = (uint8_t)seq;
    body[3] = (uint8_t)(seq >> 8);
    body[4] = (uint8_t)payload_len;
    body[5] = (uint8_t)(payload_len >> 8);
    uint32_t crc = crc32_update(0, body, n);
    for (int i = 0; i < 4; i++)
        body[n + (size_t)i] = (uint8_t)(crc >> (8 * i));
    size_t out = cobs_encode(body, n + FRAME_CRC, sink, ctx);
    sink(ctx, 0);
    return out + 1;
}
