/* Message payloads of the native link protocol (docs/protocol.md §2), parse and build.
 * Requests are parsed (device side); responses are built. Little-endian, fixed width. */
#ifndef PROVISION_MESSAGES_H
#define PROVISION_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

enum msg_type {
    MSG_HELLO = 0x01,
    MSG_BEGIN = 0x02,
    MSG_DATA = 0x03,
    MSG_COMMIT = 0x04,
    MSG_LIST = 0x05,
    MSG_READ = 0x06,
    MSG_DELETE = 0x07,
    MSG_KEYGEN = 0x08,
    MSG_RESET = 0x09,
    MSG_TLS_CHECK = 0x0A,
    MSG_CHANGE_BAUD = 0x0B,
    MSG_BEGIN_LEAN = 0x0C, /* Feature.LEAN (PROTO_LEAN builds) */
    MSG_DATA_LEAN = 0x0D,  /* a frame body of its own (frame.h FRAME_LEAN_DATA) */
    MSG_OK = 0x80,
    MSG_HELLO_INFO = 0x81,
    MSG_ACK = 0x82,
    MSG_NAK = 0x83,
    MSG_COMMITTED = 0x84,
    MSG_LIST_PAGE = 0x85,
    MSG_READ_DATA = 0x86,
    MSG_CSR = 0x87,
    MSG_TLS_RESULT = 0x88,
    MSG_ERROR = 0x8F,
};

enum err_code {
    ERR_UNSUPPORTED_VERSION = 0x01,
    ERR_UNKNOWN_MESSAGE = 0x02,
    ERR_MALFORMED = 0x03,
    ERR_NO_TRANSFER = 0x04,
    ERR_INCOMPLETE = 0x05,
    ERR_DIGEST_MISMATCH = 0x06,
    ERR_BAD_BUNDLE = 0x07,
    ERR_BAD_SIGNATURE = 0x08,
    ERR_TOO_LARGE = 0x09,
    ERR_NO_SPACE = 0x0A,
    ERR_NOT_FOUND = 0x0B,
    ERR_FORBIDDEN = 0x0C,
    ERR_GUARD = 0x0D,
    ERR_UNSUPPORTED = 0x0E,
    ERR_FLASH = 0x0F,
    ERR_BUSY = 0x10,
};

enum nak_reason { NAK_BAD_FRAME = 1, NAK_OUT_OF_WINDOW = 2, NAK_BAD_OFFSET = 3 };
enum delete_scope { DELETE_SLOT = 0, DELETE_TAG = 1, DELETE_ALL = 2 };

#define FEATURE_KEYGEN 0x0001u
#define FEATURE_SIGNED_ONLY 0x0002u
#define FEATURE_RESUME 0x0004u
#define FEATURE_READ 0x0008u
#define FEATURE_TLS_CHECK 0x0010u
#define TLS_RESULT_MAX_CHAIN 8u
#define FEATURE_BAUD 0x0020u /* HELLO_INFO ends with the rates CHANGE_BAUD switches to */
#define MSG_MAX_RATES 8u
#define FEATURE_LEAN 0x0040u /* BEGIN_LEAN and DATA_LEAN (PROTO_LEAN builds) */
#define LEAN_DIGEST_SIZE 4u   /* BEGIN_LEAN names the bundle by this much of its SHA-256 */
#define DELETE_ALL_GUARD 0x214C4C41u
#define MSG_MIN_PAYLOAD 128u
#define MSG_MAX_TEXT 64u
#define LIST_ENTRY_SIZE 41u
#define DATA_OVERHEAD 6u

typedef struct {
    uint8_t type;
    union {
        struct {
            uint8_t version;
            uint16_t max_payload;
        } hello;
        struct msg_begin {
            uint16_t transfer_id;
            uint32_t total_size;
            uint16_t chunk_size;
            uint8_t sha256[32]; /* BEGIN_LEAN: its first LEAN_DIGEST_SIZE bytes only */
        } begin;
        struct msg_data {
            uint16_t transfer_id;
            uint32_t offset; /* DATA_LEAN: the chunk's index */
            const uint8_t *chunk;
            uint16_t chunk_len;
        } data;
        struct {
            uint16_t transfer_id;
        } commit;
        struct {
            uint16_t start;
        } list;
        struct msg_read {
            uint32_t sec_tag;
            uint8_t slot;
            uint32_t offset;
            uint16_t max_len;
        } read;
        struct msg_delete {
            uint8_t scope;
            uint32_t sec_tag;
            uint8_t slot;
            uint32_t guard;
        } del;
        struct {
            uint32_t sec_tag;
            uint16_t offset;
            const uint8_t *subject; /* UTF-8, not terminated */
            uint8_t subject_len;
        } keygen;
        struct msg_tls_check {
            uint32_t sec_tag;
            uint16_t port;
            uint8_t tls;
            uint16_t timeout_ms;
            const uint8_t *host; /* UTF-8, not terminated */
            uint8_t host_len;
        } tls;
        struct {
            uint32_t baud;
        } change_baud;
    } u;
} msg_request;

typedef enum {
    MSG_PARSE_OK = 0,
    MSG_PARSE_UNKNOWN,   /* not a request type */
    MSG_PARSE_MALFORMED, /* wrong length, bad text */
} msg_parse;

msg_parse msg_parse_request(uint8_t type, const uint8_t *p, uint16_t n, msg_request *out);

/* Builders write a payload at `p` and return its length. */
typedef struct {
    uint16_t max_payload;
    uint8_t window;
    uint32_t max_bundle;
    uint16_t max_slots;
    uint16_t max_tags;
    uint32_t max_slot_size;
    uint16_t features;
    const uint8_t *uid;
    uint8_t uid_len; /* <= 32 */
    const char *firmware; /* <= 64 bytes */
    const uint32_t *rates; /* with FEATURE_BAUD: the rates it switches to */
    uint8_t rate_count;    /* <= MSG_MAX_RATES */
} msg_hello_info;

uint16_t msg_build_ok(uint8_t *p, uint8_t request);
uint16_t msg_build_hello_info(uint8_t *p, const msg_hello_info *h);
uint16_t msg_build_ack(uint8_t *p, uint16_t transfer_id, uint32_t cumulative, uint32_t sack);
uint16_t msg_build_nak(uint8_t *p, uint16_t transfer_id, uint32_t offset, uint8_t reason);
uint16_t msg_build_committed(uint8_t *p, uint16_t transfer_id, uint16_t slot_count,
                             const uint8_t digest[32]);
/* LIST_PAGE: header now, then entries appended with msg_put_list_entry; count patched. */
uint16_t msg_build_list_page(uint8_t *p, uint16_t total, uint16_t start, uint8_t count);
uint16_t msg_put_list_entry(uint8_t *p, uint32_t sec_tag, uint8_t slot, uint32_t size,
                            const uint8_t sha256[32]);
/* READ_DATA / CSR: header fields; the caller appends the data bytes. */
uint16_t msg_build_read_data(uint8_t *p, uint32_t sec_tag, uint8_t slot, uint32_t total,
                             uint32_t offset);
uint16_t msg_build_csr(uint8_t *p, uint32_t sec_tag, uint16_t total, uint16_t offset);
uint16_t msg_build_error(uint8_t *p, uint8_t code, uint8_t request, const char *detail);

/* TLS_RESULT; texts are cut to 255 bytes, and the whole to `cap` (chain entries first). */
typedef struct {
    uint32_t sec_tag;
    uint8_t failure; /* provision.tls.report.Failure number */
    uint8_t server_verified;
    uint8_t client_accepted; /* 0 rejected, 1 accepted, 2 unknown */
    const char *version, *cipher, *accepted_as, *evidence, *detail;
    const char *chain[TLS_RESULT_MAX_CHAIN]; /* the server's chain, leaf first */
    uint8_t chain_count;
} msg_tls_result;
uint16_t msg_build_tls_result(uint8_t *p, uint16_t cap, const msg_tls_result *r);

#endif
