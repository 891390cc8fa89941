/* The C stub's test program: replays the vectors that gen_vectors.py wrote from the Python
 * implementation, then runs the store's power-cut test over a RAM flash.
 *
 *   test_stub VECTORS.txt
 *
 * Prints one line per failure and a summary; exits non-zero if anything failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "cobs.h"
#include "crc32.h"
#include "flash_ram.h"
#include "sha256.h"
#include "store.h"
#include "test_support.h"

int checks, failures;

void fail(const char *what, const char *name, const char *detail)
{
    failures++;
    printf("FAIL %s %s: %s\n", what, name, detail);
}

static char line[1u << 18];
static uint8_t data[1u << 17];
static uint8_t want[1u << 17];

/* Hex field to bytes; "-" is empty. Returns length or -1. */
long unhex(const char *hex, uint8_t *out, size_t cap)
{
    if (strcmp(hex, "-") == 0)
        return 0;
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
} sink_buf;

static void to_buf(void *ctx, uint8_t b)
{
    sink_buf *s = ctx;
    if (s->len < s->cap)
        s->buf[s->len] = b;
    s->len++;
}

int mem_read(void *ctx, uint32_t off, void *buf, uint32_t n)
{
    const mem_src *m = ctx;
    if (off > m->len || n > m->len - off)
        return -1;
    memcpy(buf, m->data + off, n);
    return 0;
}

static void test_crc(const char *name, char *a, char *b)
{
    long n = unhex(a, data, sizeof data);
    checks++;
    if (n < 0 || crc32_update(0, data, (size_t)n) != strtoul(b, NULL, 16)) {
        fail("crc32", name, "value differs from zlib.crc32");
        return;
    }
    /* Split in two: continuing a CRC must give the same value. */
    uint32_t half = crc32_update(0, data, (size_t)n / 2);
    if (crc32_update(half, data + n / 2, (size_t)(n - n / 2)) != strtoul(b, NULL, 16))
        fail("crc32", name, "continued CRC differs");
}

static void test_sha(const char *name, char *a, char *b)
{
    long n = unhex(a, data, sizeof data);
    uint8_t d[32];
    char hex[65];
    checks++;
    if (n < 0) {
        fail("sha256", name, "bad hex");
        return;
    }
    /* Feed in odd pieces to cross block boundaries at different places. */
    sha256_ctx ctx;
    sha256_init(&ctx);
    for (long i = 0; i < n; i += 7)
        sha256_update(&ctx, data + i, (size_t)(n - i < 7 ? n - i : 7));
    sha256_final(&ctx, d);
    tohex(d, 32, hex);
    if (strcmp(hex, b) != 0)
        fail("sha256", name, "digest differs from hashlib");
}

static void test_cobs(const char *name, char *a, char *b)
{
    long n = unhex(a, data, sizeof data);
    long m = unhex(b, want, sizeof want);
    static uint8_t enc[1u << 17];
    sink_buf s = {enc, 0, sizeof enc};
    checks++;
    cobs_encode(data, (size_t)n, to_buf, &s);
    if (s.len != (size_t)m || memcmp(enc, want, (size_t)m) != 0) {
        fail("cobs", name, "encoding differs from the cobs package");
        return;
    }
    long d = cobs_decode_inplace(enc, s.len);
    if (d != n || memcmp(enc, data, (size_t)n) != 0)
        fail("cobs", name, "decode does not give the input back");
}

static void test_bundle(const char *name, char *hex, char *verdict, char **rest, int nrest)
{
    long n = unhex(hex, data, sizeof data);
    mem_src m = {data, (uint32_t)n};
    bundle_src src = {mem_read, &m, (uint32_t)n};
    bundle_view v;
    char msg[256];
    checks++;
    bundle_err e = bundle_check(&src, &v);
    if (strcmp(verdict, "err") == 0) {
        if (e == BUNDLE_OK)
            fail("bundle", name, "accepted a bundle Python rejects");
        else if (nrest > 0 && strcmp(bundle_code(e), rest[0]) != 0) {
            snprintf(msg, sizeof msg, "C says %s (%s), Python says %s", bundle_code(e),
                     bundle_strerror(e), rest[0]);
            fail("bundle", name, msg);
        }
        return;
    }
    if (e != BUNDLE_OK) {
        snprintf(msg, sizeof msg, "rejected a bundle Python accepts: %s", bundle_strerror(e));
        fail("bundle", name, msg);
        return;
    }
    long count = strtol(rest[0], NULL, 10);
    if (count != v.count) {
        fail("bundle", name, "record count differs");
        return;
    }
    bundle_record r;
    for (int i = 0; i < count; i++) {
        if (!bundle_next(&v, &r) || 1 + i >= nrest) {
            fail("bundle", name, "ran out of records");
            return;
        }
        uint8_t d[32];
        char got[200], digest[65];
        sha256(data + r.payload_off, r.length, d);
        tohex(d, 32, digest);
        snprintf(got, sizeof got, "%u,%u,%u,%u,%u,%s", (unsigned)r.sec_tag, r.slot, r.encoding,
                 r.flags, (unsigned)r.length, digest);
        if (strcmp(got, rest[1 + i]) != 0) {
            snprintf(msg, sizeof msg, "record %d: C %s, Python %s", i, got, rest[1 + i]);
            fail("bundle", name, msg);
            return;
        }
    }
    if (bundle_next(&v, &r))
        fail("bundle", name, "more records than Python found");
}

/* Bundles kept for the store test. */
uint8_t store_old[1u << 15], store_new[1u << 15], store_keep[1u << 15];
uint32_t store_old_len, store_new_len, store_keep_len;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS.txt\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    int frames = 0, golden = 0;
    while (fgets(line, sizeof line, f)) {
        char *tok[80];
        int nt = 0;
        for (char *t = strtok(line, " \n"); t && nt < 80; t = strtok(NULL, " \n"))
            tok[nt++] = t;
        if (nt < 3)
            continue;
        if (strcmp(tok[0], "crc32") == 0 && nt == 4)
            test_crc(tok[1], tok[2], tok[3]);
        else if (strcmp(tok[0], "sha256") == 0 && nt == 4)
            test_sha(tok[1], tok[2], tok[3]);
        else if (strcmp(tok[0], "cobs") == 0 && nt == 4)
            test_cobs(tok[1], tok[2], tok[3]);
        else if (strcmp(tok[0], "bundle") == 0 && nt >= 4) {
            golden += strncmp(tok[1], "golden_", 7) == 0;
            if (strcmp(tok[1], "store_old") == 0)
                store_old_len = (uint32_t)unhex(tok[2], store_old, sizeof store_old);
            if (strcmp(tok[1], "store_new") == 0)
                store_new_len = (uint32_t)unhex(tok[2], store_new, sizeof store_new);
            if (strcmp(tok[1], "store_keep") == 0)
                store_keep_len = (uint32_t)unhex(tok[2], store_keep, sizeof store_keep);
            test_bundle(tok[1], tok[2], tok[3], tok + 4, nt - 4);
        } else if (strcmp(tok[0], "frame") == 0) {
            frames++;
            test_frame_vector(tok, nt);
        }
    }
    fclose(f);
    /* Byte-programmable NOR, then STM32L4-like (8) and STM32H7-like (16) write blocks. */
    static const uint32_t blocks[] = {1, 8, 16};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        ram_flash_write_block = blocks[i];
        test_store_power_cut();
        test_proto();
    }
    printf("%d checks, %d failures (%d frame vectors, %d golden bundles)\n", checks, failures,
           frames, golden);
    return failures ? 1 : 0;
}
