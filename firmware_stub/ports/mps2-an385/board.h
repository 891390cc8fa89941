#ifndef PROVISION_BOARD_H
#define PROVISION_BOARD_H

#include <stdint.h>

/* Leave QEMU at once (the simulated power cut). */
void board_power_off(void) __attribute__((noreturn));

int flash_semihost_open(const char *path, uint32_t bytes, long cut_after);

#endif
