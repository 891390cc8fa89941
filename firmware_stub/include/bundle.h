/* Bundle format v1 reader (docs/bundle-format.md; defined in provision/bundle/format.py).
 *
 *   header   "PRVB" | version u8 | flags u8 | device_id_len u8 | device_id | count u16
 *   record   sec_tag u32 | slot u8 | encoding u8 | flags u16 | length u32 | payload | crc32 u32
 *   trailer  sha256 of everything before it [| key_id 8 | r||s 64 when flags & SIGNED]
 *
 * The bundle is read through a callback so it can sit in flash (the staging area) rather
 * than in RAM. bundle_check() validates everything the Python decoder validates, in the same
 * order (so the first fault found is the one Python names); only then does bundle_next()
 * hand out records. */
#ifndef PROVISION_BUNDLE_H
#define PROVISION_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_MAGIC "PRVB"
#define BUNDLE_VERSION 1u
#define BUNDLE_FLAG_SIGNED 0x01u
#define BUNDLE_MAX_RECORDS 64u
#define BUNDLE_MAX_PAYLOAD (16u * 1024u)
#define BUNDLE_MAX_DEVICE_ID 64u
#define BUNDLE_MAX_SEC_TAG 2147483647u
#define BUNDLE_RECORD_HEAD 12u /* sec_tag..length */
#define BUNDLE_SLOT_TYPES 6u   /* root_ca .. psk_identity */
#define BUNDLE_ENCODINGS 3u    /* der pem raw */
#define BUNDLE_SLOT_ROOT_CA 0u
#define BUNDLE_SLOT_CLIENT_KEY 2u
#define BUNDLE_ENC_RAW 2u
#define BUNDLE_REC_ENCRYPTED 0x0001u

typedef enum {
    BUNDLE_OK = 0,
    BUNDLE_E_MAGIC,     /* not a provision bundle */
    BUNDLE_E_VERSION,   /* unsupported format version */
    BUNDLE_E_TRUNCATED, /* ran out of bytes */
    BUNDLE_E_TRAILING,  /* bytes after the trailer */
    BUNDLE_E_FLAGS,     /* unknown header flags */
    BUNDLE_E_DEVICE_ID, /* device id too long or not printable ASCII */
    BUNDLE_E_COUNT,     /* more than BUNDLE_MAX_RECORDS */
    BUNDLE_E_SEC_TAG,   /* sec_tag above BUNDLE_MAX_SEC_TAG */
    BUNDLE_E_LENGTH,    /* payload empty or above BUNDLE_MAX_PAYLOAD */
    BUNDLE_E_REC_FLAGS, /* record flags this slot type may not carry */
    BUNDLE_E_CRC,       /* record CRC32 mismatch */
    BUNDLE_E_DIGEST,    /* SHA-256 trailer mismatch */
    BUNDLE_E_SLOT,      /* unknown slot type */
    BUNDLE_E_ENCODING,  /* unknown encoding */
    BUNDLE_E_ORDER,     /* not in canonical order */
    BUNDLE_E_DUPLICATE, /* a slot other than root_ca twice in one tag */
    BUNDLE_E_IO,        /* the reader failed */
} bundle_err;

/* Read n bytes at off; return 0 on success. */
typedef int (*bundle_read_fn)(void *ctx, uint32_t off, void *buf, uint32_t n);

typedef struct {
    bundle_read_fn read;
    void *ctx;
    uint32_t size;
} bundle_src;

typedef struct {
    uint32_t sec_tag;
    uint8_t slot;
    uint8_t encoding;
    uint16_t flags;
    uint32_t length;
    uint32_t payload_off; /* where the payload starts in the source */
} bundle_record;

typedef struct {
    const bundle_src *src;
    uint8_t flags;
    uint16_t count;
    uint32_t first_record; /* offset of record 0 */
    uint32_t body_len;     /* bytes the SHA-256 covers */
    uint8_t digest[32];
    /* iteration */
    uint16_t index;
    uint32_t pos;
} bundle_view;

/* Validate the whole bundle; on BUNDLE_OK `view` is ready for bundle_next(). */
bundle_err bundle_check(const bundle_src *src, bundle_view *view);

/* Next record (after bundle_check); returns 1 with `rec` filled, 0 at the end. */
int bundle_next(bundle_view *view, bundle_record *rec);

const char *bundle_strerror(bundle_err err);
/* The stable code the Python decoder gives the same fault, e.g. "bundle.crc". */
const char *bundle_code(bundle_err err);

#endif
