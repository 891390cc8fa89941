/* The flash HAL each port implements: NOR semantics (erase sets a page to 0xFF, program only
 * clears bits). Addresses are offsets into the credential storage area.
 *
 * Flash is programmed in write blocks (MCUboot's flash_area_align(): 1 on byte-programmable
 * NOR, 4 on the nRF5 NVMC, 8 on STM32L4, 16 on STM32H7): every flash_program() starts on a
 * block boundary and covers whole blocks, and a block is programmed at most once between
 * erases (ECC flash refuses a second program). The store pads to it. */
#ifndef PROVISION_FLASH_H
#define PROVISION_FLASH_H

#include <stdint.h>

#ifndef FLASH_PAGE_SIZE
#define FLASH_PAGE_SIZE 4096u
#endif
/* The largest write block a build supports (a power of two, at most 32): the store keeps a
 * few partly received blocks of the staging area in RAM, each this large. */
#ifndef FLASH_MAX_WRITE_BLOCK
#define FLASH_MAX_WRITE_BLOCK 16u
#endif

/* Each returns 0 on success, non-zero on a hardware error. */
int flash_read(uint32_t addr, void *buf, uint32_t n);
int flash_erase_page(uint32_t addr); /* addr is page aligned */
int flash_program(uint32_t addr, const void *buf, uint32_t n); /* whole write blocks */
uint32_t flash_size(void);        /* a multiple of FLASH_PAGE_SIZE */
uint32_t flash_write_block(void); /* a power of two, <= FLASH_MAX_WRITE_BLOCK */

#endif
