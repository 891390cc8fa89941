/* proto_crypto hooks over mbedTLS 2.28 (crypto_mbedtls.h). */
#include "crypto_mbedtls.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "bundle.h"
#include "messages.h"
#include "store.h"
#include "tls_mbedtls.h"

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_pk_context signer; /* the provisioning public key */
static uint8_t signer_id[8];       /* SHA-256 of its SubjectPublicKeyInfo DER, first 8 bytes */
static uint8_t csr_buf[1024];      /* the CSR made last; proto reads it on for offset > 0 */

static int store_error(store_err e, const char **detail)
{
    *detail = e == STORE_E_FULL || e == STORE_E_SLOTS ? "store full" : "flash write failed";
    return e == STORE_E_FULL || e == STORE_E_SLOTS ? ERR_NO_SPACE : ERR_FLASH;
}

/* Would one more slot at (sec_tag, client_key) exceed the store's slot or tag limits? */
static int room_for_key(uint32_t sec_tag)
{
    uint32_t slots = 1, tags = 1;
    uint32_t last = 0;
    for (uint16_t i = 0; i < store_count(); i++) {
        store_slot s;
        if (store_get(i, &s) != 0)
            return 0;
        if (s.sec_tag == sec_tag && s.slot == BUNDLE_SLOT_CLIENT_KEY)
            slots--; /* replaced */
        slots++;
        if (s.sec_tag != sec_tag && (i == 0 || s.sec_tag != last))
            tags++;
        last = s.sec_tag;
    }
    return slots <= PROTO_MAX_SLOTS && tags <= PROTO_MAX_TAGS;
}

static int keygen(void *ctx, uint32_t sec_tag, const char *subject, const uint8_t **csr,
                  uint16_t *csr_len, const char **detail)
{
    (void)ctx;
    static uint8_t pem[512];
    mbedtls_pk_context key;
    mbedtls_x509write_csr req;
    int code = ERR_FLASH;
    mbedtls_pk_init(&key);
    mbedtls_x509write_csr_init(&req);
    *detail = "key generation failed";
    if (!room_for_key(sec_tag)) {
        *detail = "more slots or tags than the store holds";
        code = ERR_NO_SPACE;
        goto out;
    }
    if (mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), mbedtls_ctr_drbg_random,
                            &drbg) != 0)
        goto out;
    mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&req, &key);
    if (mbedtls_x509write_csr_set_subject_name(&req, subject) != 0) {
        *detail = "subject is not an X.509 name";
        code = ERR_MALFORMED;
        goto out;
    }
    int n = mbedtls_x509write_csr_der(&req, csr_buf, sizeof csr_buf, mbedtls_ctr_drbg_random,
                                      &drbg);
    if (n <= 0 || mbedtls_pk_write_key_pem(&key, pem, sizeof pem) != 0)
        goto out;
    /* The key goes into the store as PEM (SEC1), like a bundle's client_key; only then is
     * the CSR handed out. */
    store_slot meta = {sec_tag, BUNDLE_SLOT_CLIENT_KEY, 1 /* pem */, 0, (uint32_t)strlen((char *)pem), {0}, 0};
    mbedtls_sha256_ret(pem, meta.length, meta.sha256, 0);
    store_err e = store_put(&meta, pem);
    if (e != STORE_OK) {
        code = store_error(e, detail);
        goto out;
    }
    *csr = csr_buf + sizeof csr_buf - (size_t)n;
    *csr_len = (uint16_t)n;
    code = 0;
out:
    mbedtls_platform_zeroize(pem, sizeof pem);
    mbedtls_x509write_csr_free(&req);
    mbedtls_pk_free(&key);
    return code;
}

static int verify_bundle(void *ctx, const uint8_t digest[32], const uint8_t key_id[8],
                         const uint8_t signature[64], const char **detail)
{
    (void)ctx;
    mbedtls_mpi r, s;
    int ok;
    if (memcmp(key_id, signer_id, sizeof signer_id) != 0) {
        *detail = "bundle signed with another key";
        return ERR_BAD_SIGNATURE;
    }
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(signer);
    ok = mbedtls_mpi_read_binary(&r, signature, 32) == 0 &&
         mbedtls_mpi_read_binary(&s, signature + 32, 32) == 0 &&
         mbedtls_ecdsa_verify(&ec->grp, digest, 32, &ec->Q, &r, &s) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    *detail = "bundle signature does not verify";
    return ok ? 0 : ERR_BAD_SIGNATURE;
}

/* A public key file, or the public key of a certificate file (PEM or DER). */
static int load_signer(const char *path)
{
    mbedtls_x509_crt crt;
    uint8_t der[200];
    int err = mbedtls_pk_parse_public_keyfile(&signer, path);
    if (err != 0) {
        mbedtls_x509_crt_init(&crt);
        if (mbedtls_x509_crt_parse_file(&crt, path) != 0) {
            mbedtls_x509_crt_free(&crt);
            fprintf(stderr, "provision-stub: %s: not a public key or certificate\n", path);
            return -1;
        }
        err = mbedtls_pk_parse_public_key(&signer, crt.pk_raw.p, crt.pk_raw.len);
        mbedtls_x509_crt_free(&crt);
    }
    if (err != 0 || !mbedtls_pk_can_do(&signer, MBEDTLS_PK_ECKEY) ||
        mbedtls_pk_ec(signer)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        fprintf(stderr, "provision-stub: %s: the signer must be an ECDSA P-256 key\n", path);
        return -1;
    }
    int n = mbedtls_pk_write_pubkey_der(&signer, der, sizeof der);
    uint8_t d[32];
    if (n <= 0)
        return -1;
    mbedtls_sha256_ret(der + sizeof der - n, (size_t)n, d, 0);
    memcpy(signer_id, d, sizeof signer_id);
    return 0;
}

int crypto_mbedtls_init(proto_crypto *hooks, const char *signer_path)
{
    static const char personal[] = "provision-stub";
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&signer);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              (const unsigned char *)personal, sizeof personal - 1) != 0) {
        fprintf(stderr, "provision-stub: no entropy for the random generator\n");
        return -1;
    }
    memset(hooks, 0, sizeof *hooks);
    hooks->keygen = keygen;
    hooks->tls_check = tls_mbedtls_check;
    if (signer_path) {
        if (load_signer(signer_path) != 0)
            return -1;
        hooks->verify_bundle = verify_bundle;
    }
    tls_mbedtls_init(&drbg);
    return 0;
}
