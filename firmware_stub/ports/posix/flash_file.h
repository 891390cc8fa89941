#ifndef PROVISION_FLASH_FILE_H
#define PROVISION_FLASH_FILE_H

#include <stdint.h>

#define FLASH_FILE_CUT_EXIT 75 /* exit status after a simulated power cut */

/* Open (creating as erased) a flash image of `bytes` programmed in `write_block`s; cut power
 * after `cut_after` flash bytes have been erased or programmed (-1: never). 0 on success. */
int flash_file_open(const char *path, uint32_t bytes, long cut_after, uint32_t write_block);

#endif
