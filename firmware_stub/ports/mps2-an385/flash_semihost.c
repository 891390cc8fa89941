/* The board's credential flash as a host file reached through semihosting, so it survives a
 * QEMU restart; `cut=N` on the command line simulates a power cut after N flash bytes (QEMU
 * exits, the file keeps exactly the bytes written before the cut). */
#include <string.h>

#include "board.h"
#include "flash.h"
#include "semihost.h"

static int32_t handle = -1;
static uint32_t size;
static long budget = -1;
static uint32_t position = 0xFFFFFFFFu; /* the host file's offset, to skip needless seeks */
static uint8_t erased[256];             /* a source of 0xFF: fewer, larger semihosting calls */

/* Each semihosting call traps out of the guest: sequential IO skips the seek. */
static int seek(uint32_t addr)
{
    if (addr == position)
        return 0;
    int32_t a[2] = {handle, (int32_t)addr};
    if (semihost(SH_SEEK, a) != 0) {
        position = 0xFFFFFFFFu;
        return -1;
    }
    position = addr;
    return 0;
}

static int host_io(int32_t op, uint32_t addr, const void *buf, uint32_t n)
{
    int32_t a[3] = {handle, (int32_t)(uintptr_t)buf, (int32_t)n};
    if (seek(addr) != 0 || semihost(op, a) != 0) {
        position = 0xFFFFFFFFu;
        return -1;
    }
    position = addr + n;
    return 0;
}

static int host_write(uint32_t addr, const void *buf, uint32_t n)
{
    return host_io(SH_WRITE, addr, buf, n);
}

int flash_semihost_open(const char *path, uint32_t bytes, long cut_after)
{
    int32_t a[3] = {(int32_t)(uintptr_t)path, SH_MODE_RB_PLUS, (int32_t)strlen(path)};
    handle = semihost(SH_OPEN, a);
    int32_t have = 0;
    if (handle < 0) {
        a[1] = SH_MODE_WB_PLUS;
        handle = semihost(SH_OPEN, a);
        if (handle < 0)
            return -1;
    } else {
        int32_t f[1] = {handle};
        have = semihost(SH_FLEN, f);
    }
    memset(erased, 0xFF, sizeof erased);
    for (uint32_t at = have > 0 ? (uint32_t)have : 0; at < bytes; at += sizeof erased)
        if (host_write(at, erased, bytes - at < sizeof erased ? bytes - at : sizeof erased))
            return -1;
    size = bytes;
    budget = cut_after;
    return 0;
}

int flash_read(uint32_t addr, void *buf, uint32_t n)
{
    if (addr > size || n > size - addr)
        return -1;
    return host_io(SH_READ, addr, buf, n);
}

static int write_through(uint32_t addr, const uint8_t *data, uint32_t n)
{
    uint32_t ok = budget >= 0 && budget < (long)n ? (uint32_t)budget : n;
    if (ok && host_write(addr, data, ok))
        return -1;
    if (budget >= 0) {
        budget -= (long)ok;
        if (budget == 0)
            board_power_off();
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
    uint8_t cur[64];
    if (addr > size || n > size - addr)
        return -1;
    while (n) {
        uint32_t k = n < sizeof cur ? n : (uint32_t)sizeof cur;
        if (flash_read(addr, cur, k))
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
