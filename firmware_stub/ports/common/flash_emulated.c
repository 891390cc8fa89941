/* NOR semantics over a host file: erase writes 0xFF, program only clears bits; a power cut
 * leaves exactly the bytes written before it. */
#include "flash_emulated.h"

#include <string.h>

#include "flash.h"

static uint32_t size;
static uint32_t write_block = 1;
static long budget = -1; /* flash bytes left before the power cut; -1: none */
/* Static rather than on the stack (the MCU's is small); fewer, larger backing calls. */
static uint8_t erased[256];
static uint8_t cur[256];

int flash_emulated_open(uint32_t have, uint32_t bytes, long cut_after, uint32_t block)
{
    if (block == 0 || block > FLASH_MAX_WRITE_BLOCK || (block & (block - 1u)))
        return -1;
    write_block = block;
    memset(erased, 0xFF, sizeof erased);
    /* A new (or shorter) file is erased flash. */
    for (uint32_t at = have; at < bytes; at += sizeof erased)
        if (backing_write(at, erased, bytes - at < sizeof erased ? bytes - at : sizeof erased))
            return -1;
    size = bytes;
    budget = cut_after;
    return 0;
}

int flash_read(uint32_t addr, void *buf, uint32_t n)
{
    if (addr > size || n > size - addr)
        return -1;
    return backing_read(addr, buf, n);
}

/* Write n bytes unless the power goes first: then only the bytes before the cut land. */
static int write_through(uint32_t addr, const uint8_t *data, uint32_t n)
{
    uint32_t ok = budget >= 0 && budget < (long)n ? (uint32_t)budget : n;
    if (ok && backing_write(addr, data, ok))
        return -1;
    if (budget >= 0) {
        budget -= (long)ok;
        if (budget == 0)
            backing_power_cut();
    }
    return 0;
}

int flash_erase_page(uint32_t addr)
{
    if (addr % FLASH_PAGE_SIZE || addr >= size)
        return -1;
    for (uint32_t off = 0; off < FLASH_PAGE_SIZE; off += sizeof erased)
        if (write_through(addr + off, erased, sizeof erased))
            return -1;
    return 0;
}

int flash_program(uint32_t addr, const void *buf, uint32_t n)
{
    const uint8_t *p = buf;
    if (addr > size || n > size - addr || addr % write_block || n % write_block)
        return -1;
    while (n) {
        uint32_t k = n < sizeof cur ? n : (uint32_t)sizeof cur;
        if (backing_read(addr, cur, k))
            return -1;
        for (uint32_t i = 0; i < k; i++)
            cur[i] &= p[i]; /* programming only clears bits */
        if (write_through(addr, cur, k))
            return -1;
        addr += k;
        p += k;
        n -= k;
    }
    return 0;
}

uint32_t flash_size(void) { return size; }
uint32_t flash_write_block(void) { return write_block; }
