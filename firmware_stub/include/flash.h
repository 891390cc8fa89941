/* The flash HAL each port implements: NOR semantics (erase sets a page to 0xFF, program only
 * clears bits). Addresses are offsets into the credential storage area. */
#ifndef PROVISION_FLASH_H
#define PROVISION_FLASH_H

#include <stdint.h>

#ifndef FLASH_PAGE_SIZE
#define FLASH_PAGE_SIZE 4096u
#endif

/* Each returns 0 on success, non-zero on a hardware error. */
int flash_read(uint32_t addr, void *buf, uint32_t n);
int flash_erase_page(uint32_t addr); /* addr is page aligned */
int flash_program(uint32_t addr, const void *buf, uint32_t n);
uint32_t flash_size(void); /* a multiple of FLASH_PAGE_SIZE */

#endif
