/* flash.h over the nRF5's own flash and its NVMC (nRF51 RM v3.0 §6, nRF52840 PS §4.3): page
 * erase through ERASEPAGE, programming one 32-bit word at a time with CONFIG = WEN (the
 * write block is 4 bytes: the NVMC takes word writes only). The area is the linker script's
 * .credentials section.
 *
 * A simulated power cut (board_flash_cut) stops after N flash bytes: a page erase that does
 * not fit is not started, a word is programmed with only the bytes before the cut (the rest
 * left 0xFF, which programming leaves as they are). */
#include <string.h>

#include "board.h"
#include "flash.h"

#define NVMC 0x4001E000u
#define NVMC_READY (*(volatile uint32_t *)(NVMC + 0x400u))
#define NVMC_CONFIG (*(volatile uint32_t *)(NVMC + 0x504u))
#define NVMC_ERASEPAGE (*(volatile uint32_t *)(NVMC + 0x508u))
#define CONFIG_REN 0u
#define CONFIG_WEN 1u
#define CONFIG_EEN 2u

extern uint8_t __cred_start[], __cred_end[];

static long budget = -1; /* flash bytes left before the power cut; -1: none */

void board_flash_cut_after(long bytes) { budget = bytes; }

static uint32_t area(void) { return (uint32_t)(__cred_end - __cred_start); }

static void nvmc_wait(void)
{
    while (!(NVMC_READY & 1u)) {
    }
}

int flash_read(uint32_t addr, void *buf, uint32_t n)
{
    if (addr > area() || n > area() - addr)
        return -1;
    memcpy(buf, __cred_start + addr, n);
    return 0;
}

/* Count n flash bytes done; the power goes once the budget is spent. */
static void spent(long n)
{
    if (budget < 0)
        return;
    budget -= n;
    if (budget == 0) {
        NVMC_CONFIG = CONFIG_REN;
        board_power_cut();
    }
}

int flash_erase_page(uint32_t addr)
{
    if (addr % FLASH_PAGE_SIZE || addr >= area())
        return -1;
    if (budget >= 0 && budget < (long)FLASH_PAGE_SIZE)
        board_power_cut(); /* an erase is all or nothing here */
    NVMC_CONFIG = CONFIG_EEN;
    nvmc_wait();
    NVMC_ERASEPAGE = (uint32_t)(uintptr_t)(__cred_start + addr);
    nvmc_wait();
    NVMC_CONFIG = CONFIG_REN;
    nvmc_wait();
    spent((long)FLASH_PAGE_SIZE);
    return 0;
}

int flash_program(uint32_t addr, const void *buf, uint32_t n)
{
    const uint8_t *p = buf;
    if (addr > area() || n > area() - addr || addr % 4u || n % 4u)
        return -1;
    NVMC_CONFIG = CONFIG_WEN;
    nvmc_wait();
    for (uint32_t i = 0; i < n; i += 4) {
        uint8_t b[4];
        uint32_t word;
        long k = budget >= 0 && budget < 4 ? budget : 4;
        memcpy(b, p + i, 4);
        memset(b + k, 0xFF, (size_t)(4 - k)); /* bytes past the cut stay as they are */
        memcpy(&word, b, 4);
        *(volatile uint32_t *)(uintptr_t)(__cred_start + addr + i) = word;
        nvmc_wait();
        spent(k);
    }
    NVMC_CONFIG = CONFIG_REN;
    nvmc_wait();
    return 0;
}

uint32_t flash_size(void) { return area(); }
uint32_t flash_write_block(void) { return 4u; }
