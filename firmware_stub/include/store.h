/* The credential store: a set of slots kept in one of two flash banks (A/B).
 *
 * A new set is written whole into the inactive bank; its header, with a CRC and a commit
 * marker, is programmed last. Mounting picks the valid bank with the highest generation, so a
 * power cut at any flash byte leaves either the previous set or the new one, never a mix.
 * A third area stages an incoming bundle before it is checked and applied. */
#ifndef PROVISION_STORE_H
#define PROVISION_STORE_H

#include <stdint.h>

#include "bundle.h"

#define STORE_MAX_SLOTS 64u
#define STORE_SLOT_CLIENT_KEY 2u
/* Partly received staging write blocks held in RAM: a transfer window of W chunks leaves at
 * most 2W + 1 (proto.c checks PROTO_WINDOW against it). */
#ifndef STORE_SEAMS
#define STORE_SEAMS 17u
#endif

typedef struct {
    uint32_t sec_tag;
    uint8_t slot;
    uint8_t encoding;
    uint16_t flags;
    uint32_t length;
    uint8_t sha256[32];
    uint32_t data_addr; /* flash address of the payload */
} store_slot;

typedef enum {
    STORE_OK = 0,
    STORE_E_FLASH, /* HAL error */
    STORE_E_FULL,  /* the new set does not fit in a bank */
    STORE_E_RANGE, /* staging offset outside the area */
    STORE_E_SLOTS, /* more than STORE_MAX_SLOTS */
} store_err;

/* How a checked bundle meets the stored set. */
typedef enum {
    STORE_MERGE_REPLACE_SLOTS, /* a bundle slot replaces the same (sec_tag, slot); root_ca
                                  slots of a tag are replaced together */
    STORE_MERGE_REPLACE_TAGS,  /* a tag in the bundle replaces that whole tag */
    STORE_MERGE_KEEP_KEYS,     /* as REPLACE_TAGS, but a stored client_key stays when the
                                  bundle has none for its tag (docs/protocol.md §3: a key
                                  made on the device must survive its certificate's install) */
    STORE_MERGE_REPLACE_ALL,   /* the bundle becomes the whole set */
} store_merge;

/* Lay the store out over the whole flash (two banks, one staging area) and mount it.
 * STORE_E_FLASH if the flash's write block is one this build cannot pad to (the store then
 * holds nothing and takes nothing). */
store_err store_mount(void);

uint16_t store_count(void);
uint32_t store_generation(void);
int store_get(uint16_t index, store_slot *out); /* 0 on success */
uint32_t store_max_slot_size(void); /* the largest payload one slot may have */
uint32_t store_write_block(void);   /* the flash write block the layout pads to */

/* Staging area for a bundle on its way in: erase room for `len` bytes, then program them in
 * pieces of any size and alignment, in any order, each byte once. */
uint32_t store_staging_size(void);
store_err store_staging_erase(uint32_t len);
store_err store_staging_program(uint32_t off, const void *data, uint32_t n);
int store_staging_read(void *ctx, uint32_t off, void *buf, uint32_t n); /* a bundle_read_fn */

/* Does applying bundle `b` with `how` remove the stored (sec_tag, slot)? */
int store_replaced_by(bundle_view *b, uint32_t sec_tag, uint8_t slot, store_merge how);

/* Apply a bundle already checked with bundle_check() (its source is the staging area or any
 * other reader) as one atomic change. */
store_err store_apply(bundle_view *bundle, store_merge how);

/* Put one slot from RAM (replacing the same (sec_tag, slot)), atomically: a key made on the
 * device goes in this way. */
store_err store_put(const store_slot *meta, const uint8_t *data);

/* Delete one slot (slot < 0xFF), one tag (slot == 0xFF) or everything (all != 0), atomically.
 * Sets *found to the number of slots removed. */
store_err store_delete(uint32_t sec_tag, uint8_t slot, int all, uint16_t *found);

#endif
