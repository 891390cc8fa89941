#include "cobs.h"

size_t cobs_encode(const uint8_t *src, size_t len, cobs_sink sink, void *ctx)
{
    size_t out = 0;
    size_t i = 0;
    /* Each group: a code byte (1 + count of non-zero bytes that follow, max 0xFF) then those
     * bytes; a code < 0xFF implies a zero after the group unless the input ends there. */
    for (;;) {
        size_t run = 0;
        while (i + run < len && src[i + run] != 0 && run < 254)
            run++;
        sink(ctx, (uint8_t)(run + 1));
        for (size_t k = 0; k < run; k++)
            sink(ctx, src[i + k]);
        out += run + 1;
        i += run;
        if (run == 254) {
            if (i == len)
                break; /* the Python package ends a full last group without an extra code */
            continue;
        }
        if (i == len)
            break;
        i++; /* skip the zero this group stands for */
    }
    return out;
}

long cobs_decode_inplace(uint8_t *buf, size_t len)
{
    size_t in = 0;
    size_t out = 0;
    while (in < len) {
        uint8_t code = buf[in++];
        if (code == 0)
            return -1;
        size_t run = (size_t)code - 1u;
        if (run > len - in)
            return -1;
        for (size_t k = 0; k < run; k++) {
            uint8_t b = buf[in++];
            if (b == 0)
                return -1;
            buf[out++] = b;
        }
        if (code != 0xFF && in < len)
            buf[out++] = 0;
    }
    return (long)out;
}
