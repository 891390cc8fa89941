/* provision-stub on the Nordic nRF5: nRF51822 (BBC micro:bit v1, and QEMU -M microbit) and
 * nRF52840. The link on UART0 (RX by interrupt into a ring buffer, TX drained by interrupt
 * from another), the credential store in the chip's own flash through the NVMC
 * (flash_nvmc.c).
 *
 * Under QEMU (BOARD_SEMIHOSTING=1) options come from the semihosting command line
 * (-semihosting-config enable=on,target=native,arg=fw[,arg=cut=N][,arg=uid=HEX]) and a
 * power cut is announced on semihosting's console; a build for a real board has neither
 * (a BKPT without a debugger would fault). */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "flash.h"
#include "proto.h"
#if BOARD_SEMIHOSTING
#include "semihost.h"
#endif

#ifndef BOARD_NAME
#define BOARD_NAME "nrf51-microbit"
#endif
#ifndef UART_PIN_TXD
#define UART_PIN_TXD 24u /* micro:bit v1: P0.24 and P0.25 go to the interface chip's USB serial */
#endif
#ifndef UART_PIN_RXD
#define UART_PIN_RXD 25u
#endif
#define FIRMWARE "provision-stub 0.1 " BOARD_NAME

/* UART0 (nRF51 RM v3.0 §29; on the nRF52 the same registers serve UARTE0 in UART mode). */
#define UART0 0x40002000u
#define UART_REG(off) (*(volatile uint32_t *)(UART0 + (off)))
#define UART_STARTRX UART_REG(0x000u)
#define UART_STARTTX UART_REG(0x008u)
#define UART_RXDRDY UART_REG(0x108u)
#define UART_TXDRDY UART_REG(0x11Cu)
#define UART_ERROR UART_REG(0x124u)
#define UART_INTENSET UART_REG(0x304u)
#define UART_INTENCLR UART_REG(0x308u)
#define UART_ERRORSRC UART_REG(0x480u)
#define UART_ENABLE UART_REG(0x500u)
#define UART_PSELTXD UART_REG(0x50Cu)
#define UART_PSELRXD UART_REG(0x514u)
#define UART_RXD UART_REG(0x518u)
#define UART_TXD UART_REG(0x51Cu)
#define UART_BAUDRATE UART_REG(0x524u)
#define INT_RXDRDY (1u << 2)
#define INT_TXDRDY (1u << 7)
#define INT_ERROR (1u << 9)
#define UART0_IRQ 2u

/* The line rate: BAUDRATE takes one of the values its table lists (nRF51 RM v3.0, UART,
 * BAUDRATE register; the nRF52840 PS lists the same values for its UART and, for each, the
 * rate the 16 MHz clock actually gives). Offered: the standard rates at or above the boot
 * rate whose actual rate lands within 2.5 %, about half of the 4.6 % an 8N1 receiver
 * sampling mid-bit tolerates in all (docs/firmware-stub.md): 115200 (0x01D7E000, actual
 * 115942, +0.64 %), 230400 (0x03AFB000, 231884, +0.64 %), 460800 (0x075F7000, 470588,
 * +2.1 %), 921600 (0x0EBED000, 941176, +2.1 %), 1000000 (0x10000000, exact). The nRF52 build
 * runs UARTE0 in UART mode (ENABLE 4), so these values, not UARTE's (0x01D60000 for
 * 115200...), apply there too. */
#define BOOT_BAUD 115200u
static const uint32_t RATES[] = {115200u, 230400u, 460800u, 921600u, 1000000u};
static const uint32_t BAUDRATE_OF[] = {0x01D7E000u, 0x03AFB000u, 0x075F7000u, 0x0EBED000u,
                                       0x10000000u};

#define NVIC_ISER (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICER (*(volatile uint32_t *)0xE000E180u)
#define FICR_DEVICEID ((const volatile uint32_t *)0x10000060u)

static inline void irq_off(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void irq_on(void) { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void wait_irq(void) { __asm__ volatile("wfi" ::: "memory"); }

/* Power-of-two rings; the ISR owns one end of each, main the other. The RX ring covers a
 * page erase on silicon (the CPU stalls ~21 ms on an nRF51: ~240 bytes at 115200 baud). */
#define RX_RING 256u
#define TX_RING 64u
static volatile uint8_t rx_buf[RX_RING], tx_buf[TX_RING];
static volatile uint32_t rx_head, rx_tail, tx_head, tx_tail;
static volatile uint32_t rx_overruns;
static volatile uint8_t tx_busy;

void UART0_IRQHandler(void)
{
    /* Clear the event before reading RXD: reading it may raise RXDRDY for the next byte. */
    while (UART_RXDRDY) {
        UART_RXDRDY = 0;
        uint8_t b = (uint8_t)UART_RXD;
        if (rx_head - rx_tail < RX_RING)
            rx_buf[rx_head++ % RX_RING] = b;
        else
            rx_overruns++; /* the protocol's CRC and NAK recover the frame */
    }
    if (UART_ERROR) {
        UART_ERROR = 0;
        UART_ERRORSRC = UART_ERRORSRC; /* write 1 to clear */
    }
    if (UART_TXDRDY && tx_busy) {
        UART_TXDRDY = 0;
        if (tx_head != tx_tail) {
            UART_TXD = tx_buf[tx_tail++ % TX_RING];
        } else {
            tx_busy = 0;
            UART_INTENCLR = INT_TXDRDY;
        }
    }
}

static void uart_put(void *ctx, uint8_t b)
{
    (void)ctx;
    irq_off();
    while (tx_head - tx_tail >= TX_RING) { /* full: let the ISR drain a byte */
        wait_irq();
        irq_on();
        irq_off();
    }
    if (!tx_busy) {
        tx_busy = 1;
        UART_TXDRDY = 0;
        UART_INTENSET = INT_TXDRDY;
        UART_TXD = b;
    } else {
        tx_buf[tx_head++ % TX_RING] = b;
    }
    irq_on();
}

static void uart_init(void)
{
    UART_PSELTXD = UART_PIN_TXD;
    UART_PSELRXD = UART_PIN_RXD;
    UART_BAUDRATE = BAUDRATE_OF[0]; /* BOOT_BAUD */
    UART_ENABLE = 4u; /* UART (on the nRF52: legacy UART mode of UARTE0) */
    UART_RXDRDY = 0;
    UART_ERROR = 0;
    UART_INTENSET = INT_RXDRDY | INT_ERROR;
    UART_STARTRX = 1u;
    UART_STARTTX = 1u;
    NVIC_ISER = 1u << UART0_IRQ;
}

void board_power_cut(void)
{
    NVIC_ICER = 1u << UART0_IRQ;
    irq_off();
#if BOARD_SEMIHOSTING
    semihost(SH_WRITE0, (void *)"provision-stub: power cut\n");
#endif
    for (;;)
        wait_irq();
}

/* CHANGE_BAUD, once its OK is queued: the ISR drains the TX ring, and TXDRDY after the last
 * byte means it has left the pin (nRF51 RM, UART transmission), so the rate changes only
 * then. Only rates proto_set_baud_port was given arrive here. */
static uint8_t rate_index; /* RATES[rate_index] is in BAUDRATE */

static uint32_t set_baud(void *ctx, uint32_t baud)
{
    (void)ctx;
    uint32_t before = RATES[rate_index];
    uint8_t i = 0;
    while (RATES[i] != baud)
        i++;
    irq_off();
    while (tx_busy) {
        wait_irq();
        irq_on();
        irq_off();
    }
    UART_BAUDRATE = BAUDRATE_OF[i];
    irq_on();
    rate_index = i;
    return before;
}

static uint8_t uid[8];
static void on_reset(void *ctx);
static const proto_port PORT = {uart_put, NULL, on_reset, NULL, uid, sizeof uid, FIRMWARE, NULL};

static void on_reset(void *ctx)
{
    set_baud(ctx, BOOT_BAUD); /* a restart: the UART back at its boot rate (after the OK) */
    proto_init(&PORT);        /* a warm restart: RAM state gone, flash kept */
}

#if BOARD_SEMIHOSTING
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void semihost_options(void)
{
    static char cmdline[96 + 4]; /* NUL-padded: a 4-byte compare never reads past it */
    int32_t args[2] = {(int32_t)(uintptr_t)cmdline, 96};
    if (semihost(SH_GET_CMDLINE, args) != 0)
        return;
    cmdline[args[1]] = 0;
    for (char *t = cmdline; *t; t++) {
        if (!memcmp(t, "cut=", 4)) {
            long v = 0;
            for (const char *d = t + 4; *d >= '0' && *d <= '9'; d++)
                v = v * 10 + (*d - '0');
            board_flash_cut_after(v);
        } else if (!memcmp(t, "uid=", 4)) {
            for (unsigned i = 0; i < sizeof uid && hexval(t[4 + 2 * i]) >= 0; i++)
                uid[i] = (uint8_t)(hexval(t[4 + 2 * i]) << 4 | hexval(t[5 + 2 * i]));
        }
        while (*t && *t != ' ')
            t++;
        if (!*t)
            break;
    }
}
#endif

int main(void)
{
    /* The factory-programmed 64-bit device ID is the UID. */
    uint32_t id[2] = {FICR_DEVICEID[0], FICR_DEVICEID[1]};
    memcpy(uid, id, sizeof uid);
#if BOARD_SEMIHOSTING
    semihost_options();
#endif
    proto_set_baud_port(RATES, sizeof RATES / sizeof RATES[0], set_baud);
    proto_init(&PORT);
    uart_init();
    for (;;) {
        uint8_t chunk[32];
        uint32_t n = 0;
        irq_off();
        while (n < sizeof chunk && rx_tail != rx_head)
            chunk[n++] = rx_buf[rx_tail++ % RX_RING];
        if (n == 0)
            wait_irq(); /* woken by the UART interrupt, which runs once irq_on() below */
        irq_on();
        if (n)
            proto_input(chunk, n);
    }
}
