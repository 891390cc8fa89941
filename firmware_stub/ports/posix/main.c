/* provision-stub for POSIX: the firmware stub as a host program, for tests, fuzzing and as a
 * fast stand-in for a board.
 *
 *   provision-stub [--flash FILE] [--uid HEX] [--cut-after N] [--write-block N]
 *                  [--signer PUBKEY] [--pty | --tcp PORT]
 *
 * Speaks the native link protocol on stdin/stdout (default), on a new pseudo-terminal whose
 * path it prints (--pty), or on TCP 127.0.0.1:PORT (--tcp; 0 picks a port; it prints
 * socket://127.0.0.1:N). The flash lives in FILE and survives restarts. --cut-after N
 * simulates a power cut after N flash bytes (erased or programmed): the process exits with
 * status 75 at once, leaving the file as the flash would be. --write-block N (1, 2, 4, 8 or
 * 16; default 1) makes the file flash take programs in whole N-byte blocks only, as an
 * nRF5 (4), STM32L4 (8) or STM32H7 (16) does; the store lays itself out to match.
 *
 * Built with mbedTLS (STUB_MBEDTLS, when libmbedtls-dev is installed) the stub also makes
 * keys (KEYGEN: the key stays in its flash, a CSR goes out) and runs TLS_CHECK itself;
 * --signer PUBKEY (an ECDSA P-256 public key or certificate, PEM or DER) makes it a
 * SIGNED_ONLY device. HELLO's feature bits say which of these this build has. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "flash.h"
#include "flash_file.h"
#include "proto.h"
#include "sha256.h"
#if STUB_MBEDTLS
#include "crypto_mbedtls.h"
#endif

#define STUB_FLASH_SIZE (3u * 8u * FLASH_PAGE_SIZE) /* two 32 KB banks + 32 KB staging */
#define FIRMWARE "provision-stub 0.1 posix"

static int out_fd = 1;
static uint8_t out_buf[1024];
static size_t out_len;

static void flush_out(void *ctx)
{
    (void)ctx;
    size_t done = 0;
    while (done < out_len) {
        ssize_t n = write(out_fd, out_buf + done, out_len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the host went away; the bytes are lost like on a UART */
        done += (size_t)n;
    }
    out_len = 0;
}

static void put(void *ctx, uint8_t b)
{
    if (out_len == sizeof out_buf)
        flush_out(ctx);
    out_buf[out_len++] = b;
}

/* CHANGE_BAUD: a real termios change where the port is a terminal (a pty), nothing on TCP
 * or a pipe, which have no line rate; the rate is kept either way so a fallback returns. */
#define BOOT_BAUD 115200u
static const uint32_t RATES[] = {115200u, 230400u, 460800u, 921600u};
static uint32_t line_baud = BOOT_BAUD;

static speed_t speed_of(uint32_t baud)
{
    switch (baud) {
    case 230400u: return B230400;
    case 460800u: return B460800;
    case 921600u: return B921600;
    default: return B115200;
    }
}

static uint32_t set_baud(void *ctx, uint32_t baud)
{
    (void)ctx;
    uint32_t before = line_baud;
    struct termios t;
    if (isatty(out_fd) && tcgetattr(out_fd, &t) == 0) {
        cfsetispeed(&t, speed_of(baud));
        cfsetospeed(&t, speed_of(baud));
        tcsetattr(out_fd, TCSADRAIN, &t); /* after the OK has left at the old rate */
    }
    line_baud = baud;
    return before;
}

static uint8_t uid[8];
static void on_reset(void *ctx);
static proto_crypto crypto;
static proto_port PORT = {put, flush_out, on_reset, NULL, uid, sizeof uid, FIRMWARE, NULL};

static void on_reset(void *ctx)
{
    (void)ctx;
    set_baud(ctx, BOOT_BAUD); /* a restart: the UART back at its boot rate */
    proto_init(&PORT);        /* RAM state gone, flash kept */
}

static void serve(int in_fd)
{
    uint8_t buf[512];
    for (;;) {
        ssize_t n = read(in_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        proto_input(buf, (size_t)n);
    }
}

static int open_pty(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master))
        return -1;
    const char *name = ptsname(master);
    int slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0)
        return -1;
    struct termios t;
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    /* Keep our slave fd open: the master then never sees EIO when a host closes the port. */
    printf("%s\n", name);
    fflush(stdout);
    return master;
}

static void serve_tcp(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1) ||
        getsockname(s, (struct sockaddr *)&a, &len)) {
        perror("provision-stub: tcp");
        exit(1);
    }
    printf("socket://127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);
    /* One host at a time; the device session (a transfer in progress) survives reconnects. */
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            perror("provision-stub: accept");
            exit(1);
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        out_fd = c;
        serve(c);
        close(c);
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: provision-stub [--flash FILE] [--uid HEX] [--cut-after N] "
            "[--write-block N] [--signer PUBKEY] [--pty | --tcp PORT]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *flash_path = "provision-stub-flash.bin";
    const char *uid_hex = NULL;
    long cut_after = -1;
    long write_block = 1;
    const char *signer = NULL;
    int use_pty = 0, tcp_port = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--flash") && i + 1 < argc)
            flash_path = argv[++i];
        else if (!strcmp(argv[i], "--uid") && i + 1 < argc)
            uid_hex = argv[++i];
        else if (!strcmp(argv[i], "--cut-after") && i + 1 < argc)
            cut_after = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--signer") && i + 1 < argc)
            signer = argv[++i];
        else if (!strcmp(argv[i], "--write-block") && i + 1 < argc)
            write_block = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--pty"))
            use_pty = 1;
        else if (!strcmp(argv[i], "--tcp") && i + 1 < argc)
            tcp_port = atoi(argv[++i]);
        else
            return usage();
    }
    if (write_block < 1 || write_block > (long)FLASH_MAX_WRITE_BLOCK ||
        (write_block & (write_block - 1))) {
        fprintf(stderr, "provision-stub: --write-block must be a power of two, 1 to %u\n",
                (unsigned)FLASH_MAX_WRITE_BLOCK);
        return 2;
    }
    if (flash_file_open(flash_path, STUB_FLASH_SIZE, cut_after, (uint32_t)write_block) != 0) {
        fprintf(stderr, "provision-stub: cannot open flash file %s: %s\n", flash_path,
                strerror(errno));
        return 1;
    }
    if (uid_hex) {
        for (size_t i = 0; i < sizeof uid; i++) {
            unsigned v = 0;
            if (sscanf(uid_hex + 2 * i, "%2x", &v) != 1) {
                fprintf(stderr, "provision-stub: --uid needs %zu hex bytes\n", sizeof uid);
                return 2;
            }
            uid[i] = (uint8_t)v;
        }
    } else {
        /* Stable per flash file, distinct between files: a stand-in for a chip's UID. */
        uint8_t d[32];
        sha256(flash_path, strlen(flash_path), d);
        memcpy(uid, d, sizeof uid);
    }
#if STUB_MBEDTLS
    if (crypto_mbedtls_init(&crypto, signer) != 0)
        return 2;
    PORT.crypto = &crypto;
#else
    (void)crypto;
    if (signer) {
        fprintf(stderr, "provision-stub: --signer needs a build with mbedTLS (libmbedtls-dev)\n");
        return 2;
    }
#endif
    signal(SIGPIPE, SIG_IGN);
    proto_set_baud_port(RATES, sizeof RATES / sizeof RATES[0], set_baud);
    proto_init(&PORT);
    if (tcp_port >= 0) {
        serve_tcp(tcp_port);
    } else if (use_pty) {
        int m = open_pty();
        if (m < 0) {
            perror("provision-stub: pty");
            return 1;
        }
        out_fd = m;
        serve(m);
    } else {
        serve(0);
    }
    return 0;
}
