/* NOR flash (flash.h) emulated over a byte-addressable host file, for the ports whose flash is
 * one (posix: pread/pwrite; mps2-an385: semihosting), with an optional power cut after N
 * flash bytes. The port supplies the three backing_* hooks and calls flash_emulated_open. */
#ifndef PROVISION_FLASH_EMULATED_H
#define PROVISION_FLASH_EMULATED_H

#include <stdint.h>

/* The port's file: 0 when all n bytes were read or written at addr. */
int backing_read(uint32_t addr, void *buf, uint32_t n);
int backing_write(uint32_t addr, const void *buf, uint32_t n);
/* The power goes: never returns. */
void backing_power_cut(void);

/* The file holds `have` bytes: extend it with erased (0xFF) bytes to `bytes`, then serve
 * flash.h over it with programs in whole `write_block`s (a power of two), cutting power
 * after `cut_after` flash bytes erased or programmed (-1: never). 0 on success. */
int flash_emulated_open(uint32_t have, uint32_t bytes, long cut_after, uint32_t write_block);

#endif
