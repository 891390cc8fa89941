/* What the stub's device-side crypto costs on a Cortex-M: the posix port's KEYGEN (P-256 key,
 * PKCS#10 CSR signed with it, the key as SEC1 PEM and its SHA-256 for the store) and its
 * signed-bundle check (ECDSA P-256 verify of r||s over a digest), with the same mbedTLS
 * calls (ports/posix/crypto_mbedtls.c), bare metal under QEMU.
 *
 * Time is read from a board timer. Run QEMU with -icount shift=0: virtual time then advances
 * 1 ns per guest instruction, so timer ticks count instructions (a calibration loop of known
 * length checks that). Instructions, not cycles: bench/bench_mcu_crypto.py turns them into
 * milliseconds with a stated CPI and clock. Output on semihosting, one "name value" per line.
 *
 * The DRBG is seeded from a fixed pattern: fine for a measurement, never for a device. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mbedtls/ecdsa.h"
#include "mbedtls/ecp.h"
#include "mbedtls/hmac_drbg.h"
#include "mbedtls/memory_buffer_alloc.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha256.h"
#include "mbedtls/x509_csr.h"
#include "semihost.h"

#ifndef HEAP_BYTES
#define HEAP_BYTES (64 * 1024)
#endif
#ifndef RUNS
#define RUNS 3 /* each measurement, for a median */
#endif

#if defined(BOARD_MPS2)
/* CMSDK APB timer 0 (ARM DDI 0479C §4.4), clocked by the AN385's 25 MHz system clock. */
#define TIMER_HZ 25000000u
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)
static void timer_start(void)
{
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1u;
}
static uint32_t timer_now(void) { return 0xFFFFFFFFu - TIMER0_VALUE; } /* counts down */
#elif defined(BOARD_NRF51)
/* nRF51 TIMER0 (nRF51 RM v3.0 §18): 32-bit timer mode at 16 MHz (prescaler 0); a CAPTURE
 * task copies the counter into CC[0]. */
#define TIMER_HZ 16000000u
#define TIMER0_REG(off) (*(volatile uint32_t *)(0x40008000u + (off)))
static void timer_start(void)
{
    TIMER0_REG(0x504u) = 0u; /* MODE timer */
    TIMER0_REG(0x508u) = 3u; /* BITMODE 32 */
    TIMER0_REG(0x510u) = 0u; /* PRESCALER: 16 MHz */
    TIMER0_REG(0x00Cu) = 1u; /* TASKS_CLEAR */
    TIMER0_REG(0x000u) = 1u; /* TASKS_START */
}
static uint32_t timer_now(void)
{
    TIMER0_REG(0x040u) = 1u; /* TASKS_CAPTURE[0] */
    return TIMER0_REG(0x540u);
}
/* ports/nrf5/startup.c's vector table names the stub's UART handler; nothing enables it. */
void UART0_IRQHandler(void);
void UART0_IRQHandler(void) {}
#else
#error "BOARD_MPS2 or BOARD_NRF51"
#endif

extern uint32_t _ebss, _estack;
static unsigned char heap[HEAP_BYTES];
static mbedtls_hmac_drbg_context drbg;
static int failed;

static void out(const char *s) { semihost(SH_WRITE0, (void *)(uintptr_t)s); }

static void out_u32(const char *name, uint32_t v)
{
    char buf[48];
    size_t n = strlen(name);
    char digits[11];
    int d = 0;
    memcpy(buf, name, n);
    buf[n++] = ' ';
    do {
        digits[d++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (d > 0)
        buf[n++] = digits[--d];
    buf[n++] = '\n';
    buf[n] = '\0';
    out(buf);
}

/* The heap's corruption reports (mbedtls_config.h): the format, unformatted, then stop. */
int crypto_bench_report(const char *format, ...)
{
    out(format);
    return 0;
}

void crypto_bench_exit(int status)
{
    (void)status;
    out("result fail\n");
    semihost(SH_EXIT, (void *)(uintptr_t)0x20023u);
    for (;;) {
    }
}

static void check(const char *what, int err)
{
    if (err != 0) {
        out("error ");
        out(what);
        out_u32("", (uint32_t)-err);
        failed = 1;
    }
}

/* A fixed stream in place of a hardware RNG (the nRF's RNG peripheral on a device). */
static int fixed_entropy(void *ctx, unsigned char *buf, size_t len)
{
    uint32_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        buf[i] = (unsigned char)*state;
    }
    return 0;
}

/* 2 instructions per turn (SUBS, BNE): the check that ticks count instructions. GCC writes
 * Thumb-1 inline assembly in divided syntax, where SUB sets the flags. */
static void spin(uint32_t turns)
{
#if __ARM_ARCH_ISA_THUMB == 1
    __asm__ volatile("1: sub %0, #1\n\tbne 1b" : "+l"(turns)::"cc");
#else
    __asm__ volatile("1: subs %0, #1\n\tbne 1b" : "+l"(turns)::"cc");
#endif
}

static uint8_t csr[512];
static size_t csr_len;

/* The stub's keygen hook: key, CSR, the key as PEM and its digest for the store. */
static void keygen(uint32_t *gen_ticks, uint32_t *csr_ticks, uint32_t *pem_ticks)
{
    static unsigned char pem[512];
    unsigned char digest[32];
    mbedtls_pk_context key;
    mbedtls_x509write_csr req;
    mbedtls_pk_init(&key);
    mbedtls_x509write_csr_init(&req);
    uint32_t t0 = timer_now();
    check("pk_setup", mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)));
    check("gen_key", mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                                         mbedtls_hmac_drbg_random, &drbg));
    uint32_t t1 = timer_now();
    mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&req, &key);
    check("subject", mbedtls_x509write_csr_set_subject_name(&req, "CN=bench-device"));
    int n = mbedtls_x509write_csr_der(&req, csr, sizeof csr, mbedtls_hmac_drbg_random, &drbg);
    uint32_t t2 = timer_now();
    check("pem", mbedtls_pk_write_key_pem(&key, pem, sizeof pem));
    check("sha256", mbedtls_sha256_ret(pem, strlen((char *)pem), digest, 0));
    uint32_t t3 = timer_now();
    if (n <= 0)
        check("csr", n < 0 ? n : -1);
    else
        csr_len = (size_t)n;
    mbedtls_platform_zeroize(pem, sizeof pem);
    mbedtls_x509write_csr_free(&req);
    mbedtls_pk_free(&key);
    *gen_ticks = t1 - t0;
    *csr_ticks = t2 - t1;
    *pem_ticks = t3 - t2;
}

/* The stub's verify hook over a signer loaded once (grp and Q), as ports/posix loads it at
 * start: the first verify after loading also builds the generator's comb table, which the
 * group then keeps (MBEDTLS_ECP_FIXED_POINT_OPTIM). */
static uint32_t verify(mbedtls_ecp_keypair *signer, const uint8_t digest[32],
                       const uint8_t signature[64])
{
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    uint32_t t0 = timer_now();
    check("read r", mbedtls_mpi_read_binary(&r, signature, 32));
    check("read s", mbedtls_mpi_read_binary(&s, signature + 32, 32));
    check("verify", mbedtls_ecdsa_verify(&signer->grp, digest, 32, &signer->Q, &r, &s));
    uint32_t t1 = timer_now();
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return t1 - t0;
}

/* Stack high-water mark: paint from the end of .bss (the stack's floor in both linker
 * scripts) to just below the current stack pointer, look for the lowest word changed. */
#define PAINT 0xA5A5A5A5u
static void paint_stack(void)
{
    uint32_t *p = &_ebss;
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=l"(sp));
    uint32_t *top = sp - 16;
    while (p < top)
        *p++ = PAINT;
}
static uint32_t stack_used(void)
{
    uint32_t *p = &_ebss;
    while (p < &_estack && *p == PAINT)
        p++;
    return (uint32_t)((char *)&_estack - (char *)p);
}

int main(void)
{
    static uint32_t seed = 0x2545F491u;
    static const char personal[] = "provision crypto_bench";
    uint32_t ticks[3];
    paint_stack();
    mbedtls_memory_buffer_alloc_init(heap, sizeof heap);
    timer_start();
    out_u32("timer_hz", TIMER_HZ);
    out_u32("heap_bytes", HEAP_BYTES);
    out_u32("ecp_window_size", MBEDTLS_ECP_WINDOW_SIZE);
    out_u32("ecp_fixed_point_optim", MBEDTLS_ECP_FIXED_POINT_OPTIM);

    uint32_t t0 = timer_now();
    spin(1000000u);
    out_u32("calibration_2000000_insns", timer_now() - t0);

    check("drbg", mbedtls_hmac_drbg_seed(&drbg, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                         fixed_entropy, &seed, (const unsigned char *)personal,
                                         sizeof personal - 1));
    for (int i = 0; i < RUNS && !failed; i++) {
        keygen(&ticks[0], &ticks[1], &ticks[2]);
        out_u32("keygen_gen", ticks[0]);
        out_u32("keygen_csr", ticks[1]);
        out_u32("keygen_pem", ticks[2]);
    }

    /* A signer key and signatures over bundle-like digests, made untimed; then each check
     * on a freshly loaded signer (cold) and again on the same one (warm). */
    mbedtls_ecp_keypair key;
    mbedtls_ecp_keypair_init(&key);
    check("signer", mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &key, mbedtls_hmac_drbg_random,
                                        &drbg));
    for (int i = 0; i < RUNS && !failed; i++) {
        uint8_t digest[32], signature[64];
        mbedtls_mpi r, s;
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        check("digest", mbedtls_hmac_drbg_random(&drbg, digest, sizeof digest));
        check("sign", mbedtls_ecdsa_sign_det_ext(&key.grp, &r, &s, &key.d, digest, 32,
                                                 MBEDTLS_MD_SHA256, mbedtls_hmac_drbg_random,
                                                 &drbg));
        check("write r", mbedtls_mpi_write_binary(&r, signature, 32));
        check("write s", mbedtls_mpi_write_binary(&s, signature + 32, 32));
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);

        mbedtls_ecp_keypair signer;
        mbedtls_ecp_keypair_init(&signer);
        check("load", mbedtls_ecp_group_load(&signer.grp, MBEDTLS_ECP_DP_SECP256R1));
        check("copy", mbedtls_ecp_copy(&signer.Q, &key.Q));
        out_u32("verify_cold", verify(&signer, digest, signature));
        out_u32("verify_warm", verify(&signer, digest, signature));
        /* A signature over another digest must not verify (not timed). */
        digest[0] ^= 1u;
        mbedtls_mpi_init(&r);
        mbedtls_mpi_init(&s);
        mbedtls_mpi_read_binary(&r, signature, 32);
        mbedtls_mpi_read_binary(&s, signature + 32, 32);
        if (mbedtls_ecdsa_verify(&signer.grp, digest, 32, &signer.Q, &r, &s) == 0)
            check("tampered digest verified", -1);
        mbedtls_mpi_free(&r);
        mbedtls_mpi_free(&s);
        mbedtls_ecp_keypair_free(&signer);
    }
    mbedtls_ecp_keypair_free(&key);

    size_t heap_max = 0, blocks = 0;
    mbedtls_memory_buffer_alloc_max_get(&heap_max, &blocks);
    out_u32("heap_max", (uint32_t)heap_max);
    out_u32("heap_max_blocks", (uint32_t)blocks);
    out_u32("stack_max", stack_used());
    if (stack_used() >= (uint32_t)((char *)&_estack - (char *)&_ebss))
        check("stack overflowed into .bss", -1);

    /* The last CSR, for the host to check its signature (mbedTLS writes DER at the end of
     * the buffer), in pieces: RAM is short on the nRF51. */
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = csr + sizeof csr - csr_len;
    out("csr ");
    for (size_t i = 0; i < csr_len; i += 32) {
        char piece[65];
        size_t n = 0;
        for (size_t j = i; j < csr_len && j < i + 32; j++) {
            piece[n++] = hex[p[j] >> 4];
            piece[n++] = hex[p[j] & 15u];
        }
        piece[n] = '\0';
        out(piece);
    }
    out("\n");
    /* Everything since the timer started, for a trace to be checked against. */
    out_u32("total_since_timer_start", timer_now());
    out(failed ? "result fail\n" : "result ok\n");
    semihost(SH_EXIT, (void *)(uintptr_t)(failed ? 0x20023u : SH_STOPPED_APP_EXIT));
    for (;;) {
    }
}
