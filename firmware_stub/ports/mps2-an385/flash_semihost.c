/* The board's credential flash as a host file reached through semihosting, so it survives a
 * QEMU restart; `cut=N` on the command line simulates a power cut after N flash bytes (QEMU
 * exits, the file keeps exactly the bytes written before the cut). */
#include <string.h>

#include "board.h"
#include "flash_emulated.h"
#include "semihost.h"

static int32_t handle = -1;
static uint32_t position = 0xFFFFFFFFu; /* the host file's offset, to skip needless seeks */

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

int backing_read(uint32_t addr, void *buf, uint32_t n)
{
    return host_io(SH_READ, addr, buf, n);
}

int backing_write(uint32_t addr, const void *buf, uint32_t n)
{
    return host_io(SH_WRITE, addr, buf, n);
}

void backing_power_cut(void) { board_power_off(); }

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
    uint32_t held = have > 0 ? (uint32_t)have : 0;
    return flash_emulated_open(held < bytes ? held : bytes, bytes, cut_after, 1u);
}
