/* TLS_CHECK with mbedTLS 2.28 (tls_mbedtls.h). Debian's mbedTLS 2.28 speaks TLS up to 1.2
 * (its 1.3 is an experimental build option, off), so a request for 1.3 is a protocol
 * mismatch, said as such. In TLS 1.2 the server's Finished comes after it verified our
 * certificate: a completed handshake is the server's acceptance; `provision testserver`
 * then also greets us with "ACCEPTED <subject>", which gives the subject it saw. */
#include "tls_mbedtls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "flash.h"
#include "messages.h"
#include "store.h"

#define CONFIRM_MS 1000 /* how long to wait for the server's greeting after the handshake */

/* provision.tls.report.Failure */
enum {
    F_NONE = 0,
    F_UNKNOWN_CA = 1,
    F_HOSTNAME = 2,
    F_CLIENT_REJECTED = 3,
    F_KEY_MISMATCH = 4,
    F_PASSWORD_MISSING = 5,
    F_PASSWORD_WRONG = 6,
    F_REFUSED = 7,
    F_TIMEOUT = 8,
    F_EXPIRED = 9,
    F_BAD_CREDENTIALS = 10,
    F_PROTOCOL = 11,
    F_HANDSHAKE = 12,
};
enum { ACCEPTED_NO = 0, ACCEPTED_YES = 1, ACCEPTED_UNKNOWN = 2 };

static mbedtls_ctr_drbg_context *rng;

void tls_mbedtls_init(mbedtls_ctr_drbg_context *drbg) { rng = drbg; }

typedef struct {
    mbedtls_x509_crt roots, own;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    mbedtls_net_context net;
    msg_tls_result r;
    char version[32], cipher[96], accepted_as[300], detail[600]; /* cut to 255 on the wire */
    char chain[TLS_RESULT_MAX_CHAIN][256];
} check;

/* A slot's bytes, NUL-terminated (mbedTLS parses PEM only with its NUL counted). */
static uint8_t *slot_bytes(uint32_t sec_tag, uint8_t slot, size_t *len)
{
    for (uint16_t i = 0; i < store_count(); i++) {
        store_slot s;
        if (store_get(i, &s) != 0 || s.sec_tag != sec_tag || s.slot != slot)
            continue;
        uint8_t *buf = calloc(1, s.length + 1u);
        if (buf && flash_read(s.data_addr, buf, s.length) != 0) {
            free(buf);
            return NULL;
        }
        *len = s.length + (s.encoding == 1 /* pem */ ? 1u : 0u);
        return buf;
    }
    return NULL;
}

static int fail(check *c, uint8_t failure, const char *fmt, const char *arg)
{
    c->r.failure = failure;
    snprintf(c->detail, sizeof c->detail, fmt, arg);
    return -1;
}

static const char *mbed_error(int err)
{
    static char text[160];
    mbedtls_strerror(err, text, sizeof text);
    return text;
}

/* The slots of the tag as trust anchors, certificate chain and key. */
static int load_material(check *c, uint32_t sec_tag)
{
    size_t n_ca = 0, n_cert = 0, n_key = 0, n_pw = 0;
    uint8_t *ca = slot_bytes(sec_tag, 0, &n_ca);
    uint8_t *cert = slot_bytes(sec_tag, 1, &n_cert);
    uint8_t *key = slot_bytes(sec_tag, 2, &n_key);
    uint8_t *pw = slot_bytes(sec_tag, 3, &n_pw);
    int ok = -1, err;
    char tag[16];
    snprintf(tag, sizeof tag, "%u", (unsigned)sec_tag);
    if (!ca || !cert || !key) {
        fail(c, F_BAD_CREDENTIALS,
             !ca ? "sec_tag %s has no root_ca" : !cert ? "sec_tag %s has no client_cert"
                                                  : "sec_tag %s has no client_key",
             tag);
    } else if ((err = mbedtls_x509_crt_parse(&c->roots, ca, n_ca)) != 0) {
        fail(c, F_BAD_CREDENTIALS, "root_ca: %s", mbed_error(err));
    } else if ((err = mbedtls_x509_crt_parse(&c->own, cert, n_cert)) != 0) {
        fail(c, F_BAD_CREDENTIALS, "client_cert: %s", mbed_error(err));
    } else if ((err = mbedtls_pk_parse_key(&c->key, key, n_key, pw, pw ? n_pw : 0)) != 0) {
        if (err == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
            fail(c, F_PASSWORD_MISSING, "client_key is encrypted and sec_tag %s has no key_password", tag);
        else if (err == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
            fail(c, F_PASSWORD_WRONG, "key_password does not decrypt client_key%s", "");
        else
            fail(c, F_BAD_CREDENTIALS, "client_key: mbedTLS cannot load it (%s)", mbed_error(err));
    } else if (mbedtls_pk_check_pair(&c->own.pk, &c->key) != 0) {
        fail(c, F_KEY_MISMATCH, "client_key is not the key of client_cert%s", "");
    } else {
        ok = 0;
    }
    if (key)
        mbedtls_platform_zeroize(key, n_key);
    if (pw)
        mbedtls_platform_zeroize(pw, n_pw);
    free(ca);
    free(cert);
    free(key);
    free(pw);
    return ok;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* TCP connect within the deadline (mbedtls_net_connect has no timeout). */
static int connect_to(check *c, const proto_tls_request *q, long deadline)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8], where[300];
    snprintf(port, sizeof port, "%u", q->port);
    snprintf(where, sizeof where, "%s:%u", q->host, q->port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(q->host, port, &hints, &ai) != 0 || !ai)
        return fail(c, F_HANDSHAKE, "cannot resolve %s", q->host);
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            long left = deadline - now_ms();
            if (poll(&p, 1, left > 0 ? (int)left : 0) == 1) {
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            } else {
                err = ETIMEDOUT;
            }
        } else {
            err = errno == EISCONN ? 0 : errno;
        }
    }
    freeaddrinfo(ai);
    if (err) {
        if (fd >= 0)
            close(fd);
        if (err == ECONNREFUSED)
            return fail(c, F_REFUSED, "nothing listens on %s", where);
        if (err == ETIMEDOUT)
            return fail(c, F_TIMEOUT, "no TCP connection to %s in time", where);
        return fail(c, F_HANDSHAKE, "cannot connect: %s", strerror(err));
    }
    fcntl(fd, F_SETFL, 0);
    c->net.fd = fd;
    return 0;
}

/* A failed handshake → the failure it names. */
static void classify(check *c, int err)
{
    uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);
    if (err == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags != (uint32_t)-1) {
        char info[200];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        info[strcspn(info, "\n")] = 0;
        c->r.failure = flags & MBEDTLS_X509_BADCERT_CN_MISMATCH ? F_HOSTNAME
                       : flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)
                           ? F_EXPIRED
                       : flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED ? F_UNKNOWN_CA
                                                                   : F_HANDSHAKE;
        snprintf(c->detail, sizeof c->detail, "server certificate: %s", info);
    } else if (err == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        /* mbedTLS 2.28 keeps the received alert in in_msg: level, description. */
        int alert = c->ssl.in_msg ? c->ssl.in_msg[1] : -1;
        static const struct {
            int alert;
            uint8_t failure;
            const char *what;
        } alerts[] = {
            {MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA, F_CLIENT_REJECTED, "the server does not know the CA that issued our certificate"},
            {MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED, F_CLIENT_REJECTED, "the server says our certificate has expired"},
            {MBEDTLS_SSL_ALERT_MSG_BAD_CERT, F_CLIENT_REJECTED, "the server says our certificate is bad"},
            {MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN, F_CLIENT_REJECTED, "the server could not verify our certificate"},
            {MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT, F_CLIENT_REJECTED, "the server does not support our certificate"},
            {MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED, F_CLIENT_REJECTED, "the server says our certificate is revoked"},
            {MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED, F_CLIENT_REJECTED, "the server denied access to our certificate"},
            {MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR, F_CLIENT_REJECTED, "the server could not verify our CertificateVerify signature"},
            {MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION, F_PROTOCOL, "no TLS version or cipher in common"},
            {MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY, F_PROTOCOL, "no TLS version or cipher in common"},
            /* as provision.tls.client names it (OpenSSL's TLS 1.2 "no shared cipher") */
            {MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE, F_PROTOCOL, "no TLS version or cipher in common"},
        };
        c->r.failure = F_HANDSHAKE;
        snprintf(c->detail, sizeof c->detail, "the server sent alert %d", alert);
        for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++)
            if (alerts[i].alert == alert) {
                c->r.failure = alerts[i].failure;
                snprintf(c->detail, sizeof c->detail, "%s (alert %d)", alerts[i].what, alert);
            }
    } else if (err == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION ||
               err == MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE) {
        c->r.failure = F_PROTOCOL;
        snprintf(c->detail, sizeof c->detail, "no TLS version or cipher in common (%s)",
                 mbed_error(err));
    } else if (err == MBEDTLS_ERR_SSL_TIMEOUT) {
        c->r.failure = F_TIMEOUT;
        snprintf(c->detail, sizeof c->detail, "no complete handshake in time");
    } else if (err == MBEDTLS_ERR_NET_CONN_RESET &&
               c->ssl.state > MBEDTLS_SSL_CLIENT_CERTIFICATE) {
        /* A TLS 1.2 server that refuses our certificate sends its alert and closes while our
         * later handshake messages are still unread, so its kernel resets the connection and
         * ours drops the alert before mbedTLS reads it. Said as it is, not guessed. */
        c->r.failure = F_HANDSHAKE;
        snprintf(c->detail, sizeof c->detail,
                 "the server reset the connection after our certificate went out (a server "
                 "refusing a client certificate does this; its alert was lost)");
    } else if (err == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || err == MBEDTLS_ERR_NET_CONN_RESET ||
               err == MBEDTLS_ERR_SSL_CONN_EOF) {
        c->r.failure = F_HANDSHAKE;
        snprintf(c->detail, sizeof c->detail, "the server closed the connection during the handshake");
    } else {
        c->r.failure = F_HANDSHAKE;
        snprintf(c->detail, sizeof c->detail, "TLS error: %s", mbed_error(err));
    }
}

/* The server's chain as sent, leaf first, then our trust anchor above it. */
static void record_chain(check *c)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
    const mbedtls_x509_crt *last = NULL;
    uint8_t n = 0;
    for (; crt && n < TLS_RESULT_MAX_CHAIN; crt = crt->next, n++) {
        mbedtls_x509_dn_gets(c->chain[n], sizeof c->chain[n], &crt->subject);
        c->r.chain[n] = c->chain[n];
        last = crt;
    }
    if (last && n < TLS_RESULT_MAX_CHAIN &&
        (last->issuer_raw.len != last->subject_raw.len ||
         memcmp(last->issuer_raw.p, last->subject_raw.p, last->issuer_raw.len) != 0)) {
        for (const mbedtls_x509_crt *root = &c->roots; root && root->raw.len; root = root->next)
            if (root->subject_raw.len == last->issuer_raw.len &&
                memcmp(root->subject_raw.p, last->issuer_raw.p, last->issuer_raw.len) == 0) {
                mbedtls_x509_dn_gets(c->chain[n], sizeof c->chain[n], &root->subject);
                c->r.chain[n] = c->chain[n];
                n++;
                break;
            }
    }
    c->r.chain_count = n;
}

/* After the handshake: a greeting names the subject the server saw. */
static void confirm(check *c)
{
    char line[300];
    size_t have = 0;
    mbedtls_ssl_conf_read_timeout(&c->conf, CONFIRM_MS);
    c->r.client_accepted = ACCEPTED_YES;
    c->r.evidence = "the server's Finished came after it verified our certificate (TLS 1.2)";
    while (have < sizeof line - 1) {
        int n = mbedtls_ssl_read(&c->ssl, (unsigned char *)line + have, sizeof line - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        if (memchr(line, '\n', have))
            break;
    }
    line[have] = 0;
    if (!strncmp(line, "ACCEPTED ", 9)) {
        line[strcspn(line, "\r\n")] = 0;
        snprintf(c->accepted_as, sizeof c->accepted_as, "%s", line + 9);
        c->r.evidence = "the server greeted us with our subject";
    }
}

int tls_mbedtls_check(void *ctx, const proto_tls_request *q, uint8_t *out, uint16_t cap,
                      uint16_t *len, const char **detail)
{
    (void)ctx;
    static check c; /* large; one check at a time */
    long timeout = q->timeout_ms < 100 ? 100 : q->timeout_ms;
    long deadline = now_ms() + timeout;
    int err;
    *detail = "";
    if (q->tls != 0 && q->tls != 12 && q->tls != 13)
        return (*detail = "tls must be 0, 12 or 13"), ERR_MALFORMED;
    memset(&c, 0, sizeof c);
    c.r.sec_tag = q->sec_tag;
    c.r.client_accepted = ACCEPTED_UNKNOWN;
    mbedtls_x509_crt_init(&c.roots);
    mbedtls_x509_crt_init(&c.own);
    mbedtls_pk_init(&c.key);
    mbedtls_ssl_config_init(&c.conf);
    mbedtls_ssl_init(&c.ssl);
    mbedtls_net_init(&c.net);
    if (q->tls == 13) {
        fail(&c, F_PROTOCOL, "this device's TLS library (mbedTLS %s) speaks TLS 1.2 only", "2.28");
    } else if (load_material(&c, q->sec_tag) == 0 && connect_to(&c, q, deadline) == 0) {
        mbedtls_ssl_config_defaults(&c.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
        mbedtls_ssl_conf_authmode(&c.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_min_version(&c.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_max_version(&c.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_ca_chain(&c.conf, &c.roots, NULL);
        mbedtls_ssl_conf_own_cert(&c.conf, &c.own, &c.key);
        mbedtls_ssl_conf_rng(&c.conf, mbedtls_ctr_drbg_random, rng);
        mbedtls_ssl_conf_read_timeout(&c.conf, (uint32_t)timeout);
        if ((err = mbedtls_ssl_setup(&c.ssl, &c.conf)) != 0 ||
            (err = mbedtls_ssl_set_hostname(&c.ssl, q->host)) != 0) {
            fail(&c, F_HANDSHAKE, "TLS setup: %s", mbed_error(err));
        } else {
            mbedtls_ssl_set_bio(&c.ssl, &c.net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
            do {
                err = mbedtls_ssl_handshake(&c.ssl);
            } while ((err == MBEDTLS_ERR_SSL_WANT_READ || err == MBEDTLS_ERR_SSL_WANT_WRITE) &&
                     now_ms() < deadline);
            if (err != 0) {
                classify(&c, err);
            } else {
                c.r.server_verified = 1;
                snprintf(c.version, sizeof c.version, "%s", mbedtls_ssl_get_version(&c.ssl));
                snprintf(c.cipher, sizeof c.cipher, "%s", mbedtls_ssl_get_ciphersuite(&c.ssl));
                record_chain(&c);
                confirm(&c);
                mbedtls_ssl_close_notify(&c.ssl);
            }
        }
    }
    c.r.version = c.version;
    c.r.cipher = c.cipher;
    c.r.accepted_as = c.accepted_as;
    if (!c.r.evidence)
        c.r.evidence = "";
    c.r.detail = c.detail;
    *len = msg_build_tls_result(out, cap, &c.r);
    mbedtls_net_free(&c.net);
    mbedtls_ssl_free(&c.ssl);
    mbedtls_ssl_config_free(&c.conf);
    mbedtls_pk_free(&c.key);
    mbedtls_x509_crt_free(&c.own);
    mbedtls_x509_crt_free(&c.roots);
    return 0;
}
