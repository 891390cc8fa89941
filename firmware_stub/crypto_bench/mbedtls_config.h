/* mbedTLS 2.28 configuration for the Cortex-M crypto measurement (crypto_bench.c): what the
 * posix stub's KEYGEN and signed-bundle paths use (ports/posix/crypto_mbedtls.c), nothing
 * else. The ECP and bignum settings are the library defaults, as in Debian's libmbedtls
 * (debian/rules changes none of them): window size 4, fixed-point comb optimisation on,
 * NIST fast reduction, assembly multiply-accumulate (bn_mul.h: Thumb-1 on the Cortex-M0,
 * UMLAL/UMAAL on the Cortex-M3/M4). The random generator is HMAC_DRBG, which deterministic
 * ECDSA needs anyway (the stub's CTR_DRBG would add AES for a cost that is noise beside the
 * curve arithmetic). No filesystem, no network, no entropy source of the platform: the
 * measurement seeds the DRBG itself. The heap is mbedTLS's buffer allocator, as Zephyr
 * configures it (CONFIG_MBEDTLS_ENABLE_HEAP); MEMORY_DEBUG for its high-water mark.
 * MBEDTLS_ECP_WINDOW_SIZE and MBEDTLS_ECP_FIXED_POINT_OPTIM may come from the command line
 * (the Makefile's ECP_WINDOW / ECP_FIXED_POINT). */
#ifndef CRYPTO_BENCH_MBEDTLS_CONFIG_H
#define CRYPTO_BENCH_MBEDTLS_CONFIG_H

#define MBEDTLS_HAVE_ASM
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_MEMORY_DEBUG
/* No libc allocator or stdio behind the library: the buffer allocator's corruption reports
 * go to semihosting (crypto_bench.c). */
#define MBEDTLS_PLATFORM_NO_STD_FUNCTIONS
#define MBEDTLS_PLATFORM_EXIT_MACRO crypto_bench_exit
#define MBEDTLS_PLATFORM_FPRINTF_MACRO crypto_bench_fprintf
#define MBEDTLS_PLATFORM_SNPRINTF_MACRO snprintf /* only in code the link drops */
#define crypto_bench_fprintf(stream, ...) crypto_bench_report(__VA_ARGS__)
void crypto_bench_exit(int status);
int crypto_bench_report(const char *format, ...);

#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_HMAC_DRBG_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C

#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CSR_WRITE_C

#include "mbedtls/check_config.h"

#endif
