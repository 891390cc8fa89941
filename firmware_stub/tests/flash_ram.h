#ifndef PROVISION_FLASH_RAM_H
#define PROVISION_FLASH_RAM_H

#include <setjmp.h>
#include <stdint.h>

#include "flash.h"

#define RAM_FLASH_SIZE (3u * 8u * FLASH_PAGE_SIZE)

extern uint8_t ram_flash[RAM_FLASH_SIZE];
extern long ram_flash_budget;
extern long ram_flash_spent;
extern uint32_t ram_flash_write_block; /* what flash_write_block() reports and enforces */
extern jmp_buf ram_flash_cut;

#endif
