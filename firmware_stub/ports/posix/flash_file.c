/* Flash in a file, with NOR semantics and an optional power cut after N flash bytes. */
#include "flash_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "flash.h"

static int fd = -1;
static uint32_t size;
static long budget = -1; /* flash bytes left before the power cut; -1: none */

int flash_file_open(const char *path, uint32_t bytes, long cut_after)
{
    fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return -1;
    off_t have = lseek(fd, 0, SEEK_END);
    uint8_t ff[256];
    memset(ff, 0xFF, sizeof ff);
    /* A new (or shorter) file is erased flash. */
    for (off_t at = have < 0 ? 0 : have; at < (off_t)bytes; at += (off_t)sizeof ff) {
        size_t n = (off_t)bytes - at < (off_t)sizeof ff ? (size_t)((off_t)bytes - at) : sizeof ff;
        if (pwrite(fd, ff, n, at) != (ssize_t)n)
            return -1;
    }
    size = bytes;
    budget = cut_after;
    return 0;
}

static void power_cut(void)
{
    fprintf(stderr, "provision-stub: simulated power cut after the configured flash bytes\n");
    _exit(FLASH_FILE_CUT_EXIT);
}

int flash_read(uint32_t addr, void *buf, uint32_t n)
{
    if (addr > size || n > size - addr)
        return -1;
    return pread(fd, buf, n, addr) == (ssize_t)n ? 0 : -1;
}

/* Write n bytes unless the power goes first: then only the bytes before the cut land. */
static int write_through(uint32_t addr, const uint8_t *data, uint32_t n)
{
    uint32_t ok = budget >= 0 && budget < (long)n ? (uint32_t)budget : n;
    if (ok && pwrite(fd, data, ok, addr) != (ssize_t)ok)
        return -1;
    if (budget >= 0) {
        budget -= (long)ok;
        if (budget == 0)
            power_cut();
    }
    return 0;
}

int flash_erase_page(uint32_t addr)
{
    uint8_t ff[256];
    if (addr % FLASH_PAGE_SIZE || addr >= size)
        return -1;
    memset(ff, 0xFF, sizeof ff);
    for (uint32_t off = 0; off < FLASH_PAGE_SIZE; off += sizeof ff)
        if (write_through(addr + off, ff, sizeof ff))
            return -1;
    return 0;
}

int flash_program(uint32_t addr, const void *buf, uint32_t n)
{
    const uint8_t *p = buf;
    uint8_t cur[256];
    if (addr > size || n > size - addr)
        return -1;
    while (n) {
        uint32_t k = n < sizeof cur ? n : (uint32_t)sizeof cur;
        if (pread(fd, cur, k, addr) != (ssize_t)k)
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
