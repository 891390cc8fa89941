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

/* The line rate: BAUDDIV = PCLK / baud, an integer of at least 16 (Cortex-M System Design Kit
 * TRM, ARM DDI 0479C, APB UART); PCLK is the AN385 image's 25 MHz system clock (QEMU's
 * hw/arm/mps2.c gives the UART the same SYSCLK_FRQ). Offered: the standard rates whose
 * nearest divisor lands within 2.5 %, about half of the 4.6 % an 8N1 receiver sampling
 * mid-bit tolerates in all (docs/firmware-stub.md): 115200 (217, +0.01 %), 230400 (109,
 * -0.45 %), 460800 (54, +0.47 %), 921600 (27, +0.47 %), 1000000 (25, 0), 1500000 (17,
 * -1.96 %); 2000000 would need 12.5. */
#define PCLK_HZ 25000000u
#define BOOT_BAUD 115200u
#define BAUDDIV_OF(baud) ((PCLK_HZ + (baud) / 2u) / (baud))
#define BAUD_OUT(baud) (PCLK_HZ / BAUDDIV_OF(baud))
#define BAUD_OK(baud)                                                                          \
    (BAUDDIV_OF(baud) >= 16u &&                                                                \
     (BAUD_OUT(baud) > (baud) ? BAUD_OUT(baud) - (baud) : (baud) - BAUD_OUT(baud)) * 40u <= (baud))
static const uint32_t RATES[] = {115200u, 230400u, 460800u, 921600u, 1000000u, 1500000u};
_Static_assert(BAUD_OK(115200u) && BAUD_OK(230400u) && BAUD_OK(460800u) && BAUD_OK(921600u) &&
                   BAUD_OK(1000000u) && BAUD_OK(1500000u) && !BAUD_OK(2000000u),
               "every rate offered within 2.5 % (2000000 is not)");

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

/* CHANGE_BAUD, once its OK is in the transmitter. The UART has a one-byte TX buffer and a
 * shift register, and STATE shows only the buffer: after it empties, the last byte still
 * takes 10 bit times (10 x BAUDDIV PCLK cycles; a loop turn is at least one) to leave at
 * the old rate before the divisor may change. */
static uint32_t set_baud(void *ctx, uint32_t baud)
{
    (void)ctx;
    uint32_t div = UART_BAUDDIV;
    while (UART_STATE & STATE_TX_FULL) {
    }
    for (uint32_t i = 10u * div; i; i--)
        __asm__ volatile("nop");
    UART_BAUDDIV = BAUDDIV_OF(baud);
    return (PCLK_HZ + div / 2u) / div; /* the rate the register held */
}

static uint8_t uid[8] = {'m', 'p', 's', '2', 0, 0, 0, 1};
static void on_reset(void *ctx);
static const proto_port PORT = {uart_put, NULL, on_reset, NULL, uid, sizeof uid, FIRMWARE, NULL};

static void on_reset(void *ctx)
{
    set_baud(ctx, BOOT_BAUD); /* a restart: the UART back at its boot rate (after the OK) */
    proto_init(&PORT);        /* a warm restart: RAM state gone, flash kept */
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
    UART_BAUDDIV = BAUDDIV_OF(BOOT_BAUD);
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
    if (flash_semihost_open(flash_path, STUB_FLASH_SIZE, cut_after) != 0)
        board_power_off();
    proto_set_baud_port(RATES, sizeof RATES / sizeof RATES[0], set_baud);
    proto_init(&PORT);
    for (;;) {
        if (UART_STATE & STATE_RX_FULL) {
            uint8_t b = (uint8_t)UART_DATA;
            proto_input(&b, 1);
        }
    }
}
