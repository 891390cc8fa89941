#ifndef PROVISION_BOARD_H
#define PROVISION_BOARD_H

#include <stdint.h>

/* The simulated power goes: the device stops for good (QEMU: the run script saves the
 * flash and ends QEMU). */
void board_power_cut(void) __attribute__((noreturn));

/* Cut the power after `bytes` flash bytes erased or programmed (-1: never). */
void board_flash_cut_after(long bytes);

#endif
