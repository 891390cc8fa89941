/* Device-side crypto for the posix stub with mbedTLS (Debian's libmbedtls-dev), the TLS
 * library Zephyr, nRF Connect SDK and ESP-IDF devices run: KEYGEN (P-256 key made and kept
 * here, PKCS#10 CSR signed here), SIGNED_ONLY bundle verification, TLS_CHECK. */
#ifndef PROVISION_CRYPTO_MBEDTLS_H
#define PROVISION_CRYPTO_MBEDTLS_H

#include "proto.h"

/* Fill `hooks`; with a signer (a PEM/DER public key or certificate file) the device applies
 * only bundles signed with that P-256 key. 0 on success; else prints why and returns -1. */
int crypto_mbedtls_init(proto_crypto *hooks, const char *signer_path);

#endif
