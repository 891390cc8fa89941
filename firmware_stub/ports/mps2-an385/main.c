/* provision-stub on the MPS2 AN385 board (Cortex-M3) under qemu-system-arm:
 * the link on CMSDK UART0, the credential flash in a host file via semihosting.
 *
 * Options come from the semihosting command line (QEMU: -semihosting-config
 * enable=on,target=native,arg=fw,arg=flash=PATH[,arg=cut=N][,arg=uid=HEX]). */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "flash.h"
#include "proto.h"
#include "semihost.h"

#define UART0 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0 + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0 + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0 + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0 + 0x10u))
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u

#define STUB_FLASH_SIZE (3u * 8u * FLASH_PAGE_SIZE) /* two 32 KB banks + 32 KB staging */
#define FIRMWARE "provision-stub 0.1 mps2-an385"

static void uart_put(void *ctx, uint8_t b)
{
    (void)ctx;
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = b;
}

void board_power_off(void)
{
    semihost(SH_EXIT, (void *)SH_STOPPED_APP_EXIT);
    for (;;) {
    }
}

static uint8_t uid[8] = {'m', 'p', 's', '2', 0, 0, 0, 1};
static void on_reset(void *ctx);
static const proto_port PORT = {uart_put, NULL, on_reset, NULL, uid, sizeof uid, FIRMWARE, NULL};

static void on_reset(void *ctx)
{
    (void)ctx;
    proto_init(&PORT); /* a warm restart: RAM state gone, flash kept */
}

static long parse_long(const char *s)
{
    long v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return v;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char cmdline[256];

int main(void)
{
    const char *flash_path = "provision-mps2-flash.bin";
    long cut_after = -1;
    int32_t args[2] = {(int32_t)(uintptr_t)cmdline, (int32_t)sizeof cmdline - 1};
    if (semihost(SH_GET_CMDLINE, args) == 0) {
        cmdline[args[1]] = 0;
        for (char *t = cmdline; *t;) {
            char *end = t;
            while (*end && *end != ' ')
                end++;
            char saved = *end;
            *end = 0;
            if (!strncmp(t, "flash=", 6))
                flash_path = t + 6;
            else if (!strncmp(t, "cut=", 4))
                cut_after = parse_long(t + 4);
            else if (!strncmp(t, "uid=", 4) && strlen(t + 4) == 2 * sizeof uid)
                for (unsigned i = 0; i < sizeof uid; i++)
                    uid[i] = (uint8_t)(hexval(t[4 + 2 * i]) << 4 | hexval(t[5 + 2 * i]));
            t = saved ? end + 1 : end;
        }
    }
    UART_BAUDDIV = 16;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
    if (flash_semihost_open(flash_path, STUB_FLASH_SIZE, cut_after) != 0)
        board_power_off();
    proto_init(&PORT);
    for (;;) {
        if (UART_STATE & STATE_RX_FULL) {
            uint8_t b = (uint8_t)UART_DATA;
            proto_input(&b, 1);
        }
    }
}
