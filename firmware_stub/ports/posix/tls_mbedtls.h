/* TLS_CHECK for the posix stub with mbedTLS: a mutual-TLS handshake from the slots of one
 * sec_tag (docs/tls-check.md), reported as a TLS_RESULT. */
#ifndef PROVISION_TLS_MBEDTLS_H
#define PROVISION_TLS_MBEDTLS_H

#include <stdint.h>

#include <mbedtls/ctr_drbg.h>

#include "proto.h"

void tls_mbedtls_init(mbedtls_ctr_drbg_context *drbg);
int tls_mbedtls_check(void *ctx, const proto_tls_request *req, uint8_t *out, uint16_t cap,
                      uint16_t *len, const char **detail);

#endif
