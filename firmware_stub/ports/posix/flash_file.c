/* Flash in a file, with NOR semantics and an optional power cut after N flash bytes
 * (ports/common/flash_emulated.c over pread/pwrite). */
#include "flash_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "flash_emulated.h"

static int fd = -1;

int flash_file_open(const char *path, uint32_t bytes, long cut_after, uint32_t write_block)
{
    fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return -1;
    off_t have = lseek(fd, 0, SEEK_END);
    if (have < 0)
        have = 0;
    return flash_emulated_open(have < (off_t)bytes ? (uint32_t)have : bytes, bytes, cut_after,
                               write_block);
}

int backing_read(uint32_t addr, void *buf, uint32_t n)
{
    return pread(fd, buf, n, addr) == (ssize_t)n ? 0 : -1;
}

int backing_write(uint32_t addr, const void *buf, uint32_t n)
{
    return pwrite(fd, buf, n, addr) == (ssize_t)n ? 0 : -1;
}

void backing_power_cut(void)
{
    fprintf(stderr, "provision-stub: simulated power cut after the configured flash bytes\n");
    _exit(FLASH_FILE_CUT_EXIT);
}
