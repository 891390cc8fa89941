/* ARM semihosting (bkpt 0xab) as QEMU implements it with
 * -semihosting-config enable=on,target=native. */
#ifndef PROVISION_SEMIHOST_H
#define PROVISION_SEMIHOST_H

#include <stdint.h>

#define SH_OPEN 0x01
#define SH_CLOSE 0x02
#define SH_WRITE0 0x04
#define SH_WRITE 0x05
#define SH_READ 0x06
#define SH_SEEK 0x0A
#define SH_FLEN 0x0C
#define SH_GET_CMDLINE 0x15
#define SH_EXIT 0x18
#define SH_MODE_RB_PLUS 3 /* "r+b" */
#define SH_MODE_WB_PLUS 7 /* "w+b" */
#define SH_STOPPED_APP_EXIT 0x20026

int32_t semihost(int32_t op, void *arg);

#endif
