/* A RAM flash for the C tests: NOR semantics, a write block the test picks (a program must
 * start on a block boundary, cover whole blocks, and find them erased: ECC flash programs a
 * block once), and a power cut after any number of flash bytes (erased or programmed), which
 * longjmps back to the test. */
#include "flash_ram.h"

#include <string.h>

uint8_t ram_flash[RAM_FLASH_SIZE];
long ram_flash_budget = -1; /* bytes left before the cut; -1: no cut */
long ram_flash_spent;
uint32_t ram_flash_write_block = 1;       /* bytes erased or programmed since the last reset */
jmp_buf ram_flash_cut;

static void spend(void)
{
    if (ram_flash_budget == 0)
        longjmp(ram_flash_cut, 1);
    if (ram_flash_budget > 0)
        ram_flash_budget--;
    ram_flash_spent++;
}

int flash_read(uint32_t addr, void *buf, uint32_t n)
{
    if (addr > RAM_FLASH_SIZE || n > RAM_FLASH_SIZE - addr)
        return -1;
    memcpy(buf, ram_flash + addr, n);
    return 0;
}

int flash_erase_page(uint32_t addr)
{
    if (addr % FLASH_PAGE_SIZE || addr >= RAM_FLASH_SIZE)
        return -1;
    for (uint32_t i = 0; i < FLASH_PAGE_SIZE; i++) {
        spend();
        ram_flash[addr + i] = 0xFF;
    }
    return 0;
}

int flash_program(uint32_t addr, const void *buf, uint32_t n)
{
    const uint8_t *p = buf;
    if (addr > RAM_FLASH_SIZE || n > RAM_FLASH_SIZE - addr)
        return -1;
    if (addr % ram_flash_write_block || n % ram_flash_write_block)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        if (ram_flash[addr + i] != 0xFF)
            return -1; /* a block programmed twice between erases */
    for (uint32_t i = 0; i < n; i++) {
        spend();
        ram_flash[addr + i] &= p[i];
    }
    return 0;
}

uint32_t flash_size(void) { return RAM_FLASH_SIZE; }
uint32_t flash_write_block(void) { return ram_flash_write_block; }
