#ifndef PROVISION_TEST_SUPPORT_H
#define PROVISION_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

extern int checks, failures;
void fail(const char *what, const char *name, const char *detail);
long unhex(const char *hex, uint8_t *out, size_t cap);

typedef struct {
    const uint8_t *data;
    uint32_t len;
} mem_src;
int mem_read(void *ctx, uint32_t off, void *buf, uint32_t n);

extern uint8_t store_old[1u << 15], store_new[1u << 15], store_keep[1u << 15];
extern uint32_t store_old_len, store_new_len, store_keep_len;

void test_store_power_cut(void);
void test_frame_vector(char **tok, int nt);
void test_proto(void);

#endif
