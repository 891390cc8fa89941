#include "store.h"

#include <string.h>

#include "crc32.h"
#include "flash.h"
#include "sha256.h"

/* Bank layout, with W the flash's write block (flash_write_block()) and pad(x) x rounded up
 * to a multiple of W:
 *   header   "PRVS" | generation u32 | count u16 | 0xFFFF | data_len u32 | sha256 of the
 *            records [32] | crc32 of bytes 0..47 u32 | 0xFF up to the commit marker u32,
 *            which ends a write block of its own; the records start at max(64, its end)
 *   record   sec_tag u32 | slot u8 | encoding u8 | flags u16 | length u32 | sha256[32],
 *            padded to pad(44); then the payload, padded to pad(length)
 * With W = 1 that is the original layout (marker at 52, records at 64). The header is
 * programmed after every record has been written and read back, and the commit marker goes
 * last, alone in its write block: until that block is whole the bank does not count. The
 * marker sits at the block's end, so a cut anywhere inside the block leaves it incomplete. */
#define BANK_MAGIC 0x53565250u  /* "PRVS" little-endian */
#define COMMIT_MARK 0x54494D43u /* "CMIT" */
#define HEADER_BODY 52u         /* magic .. crc32 */
#define HEADER_MIN 64u
#define REC_HEAD 44u
#define COPY_CHUNK 64u /* a multiple of every write block */

#if FLASH_MAX_WRITE_BLOCK > 32u || (FLASH_MAX_WRITE_BLOCK & (FLASH_MAX_WRITE_BLOCK - 1u))
#error "FLASH_MAX_WRITE_BLOCK must be a power of two, at most 32"
#endif

#if FLASH_MAX_WRITE_BLOCK > 1u
/* A staging write block whose bytes arrive in more than one piece (DATA chunks need not
 * start or end on a block boundary, and arrive out of order within the window): held here
 * until every byte of it is in, then programmed once. */
typedef struct {
    uint32_t off;  /* staging offset of the block; UINT32_MAX: free */
    uint32_t have; /* bit i: byte i is in */
    uint8_t bytes[FLASH_MAX_WRITE_BLOCK];
} seam;
#endif

typedef struct {
    uint32_t wb;        /* write block */
    uint32_t rec_head;  /* pad(REC_HEAD) */
    uint32_t mark_off;  /* the commit marker */
    uint32_t hdr_size;  /* where the records start */
    uint32_t bank_size;
    uint32_t staging_base;
    uint32_t staging_size;
    uint32_t staging_len; /* the bundle being staged */
    int active; /* -1: no valid bank */
    uint32_t generation;
    uint16_t count;
    uint32_t rec_off[STORE_MAX_SLOTS]; /* record offsets inside the active bank */
} store_state;

static store_state st;
#if FLASH_MAX_WRITE_BLOCK > 1u
static seam seams[STORE_SEAMS];
#endif

static uint32_t pad(uint32_t n) { return (n + st.wb - 1u) & ~(st.wb - 1u); }

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t bank_base(int bank) { return (uint32_t)bank * st.bank_size; }

static int hash_flash(uint32_t addr, uint32_t len, sha256_ctx *sha)
{
    uint8_t buf[COPY_CHUNK];
    while (len) {
        uint32_t n = len < COPY_CHUNK ? len : COPY_CHUNK;
        if (flash_read(addr, buf, n))
            return -1;
        sha256_update(sha, buf, n);
        addr += n;
        len -= n;
    }
    return 0;
}

/* Check a bank; on success fill generation, count and (if offs) the record offsets. */
static int bank_valid(int bank, uint32_t *gen, uint16_t *count, uint32_t *offs)
{
    uint8_t h[HEADER_BODY], mark[4];
    uint32_t base = bank_base(bank);
    if (flash_read(base, h, HEADER_BODY) || flash_read(base + st.mark_off, mark, 4))
        return 0;
    if (get32(h) != BANK_MAGIC || get32(mark) != COMMIT_MARK ||
        get32(h + 48) != crc32_update(0, h, 48))
        return 0;
    uint16_t n = (uint16_t)(h[8] | h[9] << 8);
    uint32_t data_len = get32(h + 12);
    if (n > STORE_MAX_SLOTS || data_len > st.bank_size - st.hdr_size)
        return 0;
    sha256_ctx sha;
    uint8_t digest[32];
    sha256_init(&sha);
    if (hash_flash(base + st.hdr_size, data_len, &sha))
        return 0;
    sha256_final(&sha, digest);
    if (memcmp(digest, h + 16, 32) != 0)
        return 0;
    /* Walk the chain: every record must end inside data_len, the last exactly at it. */
    uint32_t off = st.hdr_size, end = st.hdr_size + data_len;
    for (uint16_t i = 0; i < n; i++) {
        uint8_t r[12];
        if (end - off < st.rec_head || flash_read(base + off, r, sizeof r))
            return 0;
        uint32_t len = get32(r + 8);
        if (len > end - off - st.rec_head || pad(len) > end - off - st.rec_head)
            return 0;
        if (offs)
            offs[i] = off;
        off += st.rec_head + pad(len);
    }
    if (off != end)
        return 0;
    *gen = get32(h + 4);
    *count = n;
    return 1;
}

store_err store_mount(void)
{
    uint32_t wb = flash_write_block();
    st.wb = 1u;
    st.bank_size = 0; /* a write block this build cannot handle: nothing fits */
    st.staging_size = 0;
    st.active = -1;
    st.count = 0;
    if (wb == 0 || wb > FLASH_MAX_WRITE_BLOCK || (wb & (wb - 1u)))
        return STORE_E_FLASH;
    st.wb = wb;
    st.rec_head = pad(REC_HEAD);
    st.mark_off = pad(HEADER_BODY) + pad(4) - 4u;
    st.hdr_size = st.mark_off + 4u > HEADER_MIN ? st.mark_off + 4u : HEADER_MIN;
    uint32_t pages = flash_size() / FLASH_PAGE_SIZE;
    st.bank_size = (pages / 3u) * FLASH_PAGE_SIZE;
    st.staging_base = 2u * st.bank_size;
    st.staging_size = flash_size() - st.staging_base;
    st.active = -1;
    st.generation = 0;
    st.count = 0;

    uint32_t gen[2];
    uint16_t cnt[2];
    int ok0 = bank_valid(0, &gen[0], &cnt[0], NULL);
    int ok1 = bank_valid(1, &gen[1], &cnt[1], NULL);
    int pick = -1;
    if (ok0 && ok1)
        pick = (int32_t)(gen[1] - gen[0]) > 0 ? 1 : 0; /* serial-number order survives wrap */
    else if (ok0)
        pick = 0;
    else if (ok1)
        pick = 1;
    if (pick >= 0) {
        bank_valid(pick, &st.generation, &st.count, st.rec_off);
        st.active = pick;
    }
    return STORE_OK;
}

uint16_t store_count(void) { return st.count; }
uint32_t store_generation(void) { return st.generation; }
uint32_t store_write_block(void) { return st.wb; }

uint32_t store_max_slot_size(void)
{
    uint32_t room = st.bank_size - st.hdr_size - st.rec_head;
    return st.bank_size > st.hdr_size + st.rec_head ? room & ~(st.wb - 1u) : 0;
}

static int read_slot(uint32_t addr, store_slot *out)
{
    uint8_t r[REC_HEAD];
    if (flash_read(addr, r, REC_HEAD))
        return -1;
    out->sec_tag = get32(r);
    out->slot = r[4];
    out->encoding = r[5];
    out->flags = (uint16_t)(r[6] | r[7] << 8);
    out->length = get32(r + 8);
    memcpy(out->sha256, r + 12, 32);
    out->data_addr = addr + st.rec_head;
    return 0;
}

int store_get(uint16_t index, store_slot *out)
{
    if (st.active < 0 || index >= st.count)
        return -1;
    return read_slot(bank_base(st.active) + st.rec_off[index], out);
}

uint32_t store_staging_size(void) { return st.staging_size; }

store_err store_staging_erase(uint32_t len)
{
    if (len > st.staging_size)
        return STORE_E_RANGE;
    st.staging_len = len;
#if FLASH_MAX_WRITE_BLOCK > 1u
    for (unsigned i = 0; i < STORE_SEAMS; i++)
        seams[i].off = UINT32_MAX;
#endif
    for (uint32_t off = 0; off < len; off += FLASH_PAGE_SIZE)
        if (flash_erase_page(st.staging_base + off))
            return STORE_E_FLASH;
    return STORE_OK;
}

#if FLASH_MAX_WRITE_BLOCK > 1u
/* Bytes [at, at + n) of the block at `off` (which holds part of a chunk): keep them, and
 * program the block once all of it is in (bytes past the bundle's end stay erased). */
static store_err seam_put(uint32_t off, uint32_t at, const uint8_t *data, uint32_t n)
{
    seam *s = NULL, *free_one = NULL;
    for (unsigned i = 0; i < STORE_SEAMS && !s; i++) {
        if (seams[i].off == off)
            s = &seams[i];
        else if (seams[i].off == UINT32_MAX && !free_one)
            free_one = &seams[i];
    }
    if (!s) {
        if (!free_one)
            return STORE_E_RANGE; /* more partial blocks than a window can leave */
        s = free_one;
        s->off = off;
        s->have = 0;
        memset(s->bytes, 0xFF, sizeof s->bytes);
        for (uint32_t i = 0; i < st.wb; i++)
            if (off + i >= st.staging_len)
                s->have |= 1u << i;
    }
    memcpy(s->bytes + at, data, n);
    for (uint32_t i = at; i < at + n; i++)
        s->have |= 1u << i;
    if (s->have != (st.wb == 32u ? UINT32_MAX : (1u << st.wb) - 1u))
        return STORE_OK;
    s->off = UINT32_MAX;
    return flash_program(st.staging_base + off, s->bytes, st.wb) ? STORE_E_FLASH : STORE_OK;
}
#endif

store_err store_staging_program(uint32_t off, const void *data, uint32_t n)
{
    const uint8_t *p = data;
    if (off > st.staging_len || n > st.staging_len - off)
        return STORE_E_RANGE;
#if FLASH_MAX_WRITE_BLOCK > 1u
    uint32_t end = off + n;
    uint32_t mask = st.wb - 1u;
    if (off < end && ((off & mask) || end - off < st.wb)) { /* the first block, in part */
        uint32_t block = off & ~mask;
        uint32_t k = end - off < block + st.wb - off ? end - off : block + st.wb - off;
        store_err e = seam_put(block, off - block, p, k);
        if (e != STORE_OK)
            return e;
        off += k;
        p += k;
    }
    uint32_t whole = (end - off) & ~mask;
    if (whole && flash_program(st.staging_base + off, p, whole))
        return STORE_E_FLASH;
    off += whole;
    p += whole;
    if (off < end) /* the last block, in part */
        return seam_put(off, 0, p, end - off);
    return STORE_OK;
#else
    return n && flash_program(st.staging_base + off, p, n) ? STORE_E_FLASH : STORE_OK;
#endif
}

int store_staging_read(void *ctx, uint32_t off, void *buf, uint32_t n)
{
    (void)ctx;
    if (off > st.staging_size || n > st.staging_size - off)
        return -1;
    return flash_read(st.staging_base + off, buf, n);
}

/* ---- writing a new set into the inactive bank ---- */

typedef struct {
    int bank;
    uint32_t off; /* next record offset inside the bank */
    uint16_t count;
} writer;

static store_err writer_begin(writer *w)
{
    if (st.bank_size == 0)
        return STORE_E_FLASH; /* not mounted, or a write block this build cannot pad to */
    w->bank = st.active == 0 ? 1 : 0;
    w->off = st.hdr_size;
    w->count = 0;
    /* Page 0 first: the stale header is gone before anything else changes. */
    for (uint32_t p = 0; p < st.bank_size; p += FLASH_PAGE_SIZE)
        if (flash_erase_page(bank_base(w->bank) + p))
            return STORE_E_FLASH;
    return STORE_OK;
}

/* Room in the new bank for one more record with `len` payload bytes? */
static store_err writer_room(const writer *w, uint32_t len)
{
    uint32_t left = st.bank_size - w->off;
    if (w->count >= STORE_MAX_SLOTS)
        return STORE_E_SLOTS;
    if (len > left || left - len < st.rec_head || pad(len) > left - st.rec_head)
        return STORE_E_FULL;
    return STORE_OK;
}

static store_err writer_head(uint32_t dst, const store_slot *meta)
{
    uint8_t r[REC_HEAD + FLASH_MAX_WRITE_BLOCK];
    memset(r, 0xFF, sizeof r);
    put32(r, meta->sec_tag);
    r[4] = meta->slot;
    r[5] = meta->encoding;
    r[6] = (uint8_t)meta->flags;
    r[7] = (uint8_t)(meta->flags >> 8);
    put32(r + 8, meta->length);
    memcpy(r + 12, meta->sha256, 32);
    return flash_program(dst, r, st.rec_head) ? STORE_E_FLASH : STORE_OK;
}

static int read_flash(void *ctx, uint32_t off, void *buf, uint32_t n)
{
    (void)ctx;
    return flash_read(off, buf, n);
}

/* Copy `len` payload bytes through RAM to `dst`, the last write block padded with 0xFF. */
static store_err writer_payload(uint32_t dst, bundle_read_fn read, void *ctx, uint32_t src,
                                uint32_t len)
{
    uint8_t buf[COPY_CHUNK];
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < COPY_CHUNK ? len - done : COPY_CHUNK;
        if (read(ctx, src + done, buf, n))
            return STORE_E_FLASH;
        memset(buf + n, 0xFF, pad(n) - n);
        if (flash_program(dst + done, buf, pad(n)))
            return STORE_E_FLASH;
        done += n;
    }
    return STORE_OK;
}

/* A stored slot (payload in flash at `src`) into the new bank. */
static store_err writer_add(writer *w, const store_slot *meta, uint32_t src)
{
    store_err e = writer_room(w, meta->length);
    uint32_t dst = bank_base(w->bank) + w->off;
    if (e != STORE_OK || (e = writer_head(dst, meta)) != STORE_OK ||
        (e = writer_payload(dst + st.rec_head, read_flash, NULL, src, meta->length)) != STORE_OK)
        return e;
    w->off += st.rec_head + pad(meta->length);
    w->count++;
    return STORE_OK;
}

static store_err writer_commit(writer *w)
{
    uint32_t base = bank_base(w->bank);
    uint32_t data_len = w->off - st.hdr_size;
    uint8_t h[HEADER_BODY + FLASH_MAX_WRITE_BLOCK];
    uint8_t mark[4u + FLASH_MAX_WRITE_BLOCK];
    sha256_ctx sha;
    /* Hash what reads back from flash, so a bad program never gets committed. */
    sha256_init(&sha);
    if (hash_flash(base + st.hdr_size, data_len, &sha))
        return STORE_E_FLASH;
    memset(h, 0xFF, sizeof h);
    put32(h, BANK_MAGIC);
    put32(h + 4, st.generation + 1u);
    h[8] = (uint8_t)w->count;
    h[9] = (uint8_t)(w->count >> 8);
    put32(h + 12, data_len);
    sha256_final(&sha, h + 16);
    put32(h + 48, crc32_update(0, h, 48));
    if (flash_program(base, h, pad(HEADER_BODY)))
        return STORE_E_FLASH;
    memset(mark, 0xFF, sizeof mark);
    put32(mark + pad(4) - 4u, COMMIT_MARK);
    if (flash_program(base + pad(HEADER_BODY), mark, pad(4)))
        return STORE_E_FLASH;
    return store_mount() == STORE_OK && st.active == w->bank ? STORE_OK : STORE_E_FLASH;
}

int store_replaced_by(bundle_view *b, uint32_t sec_tag, uint8_t slot, store_merge how)
{
    bundle_record rec;
    if (how == STORE_MERGE_REPLACE_ALL)
        return 1;
    uint16_t keep_index = b->index;
    uint32_t keep_pos = b->pos;
    int found = 0;
    int tag_seen = 0, key_seen = 0;
    b->index = 0;
    b->pos = b->first_record;
    while (!found && bundle_next(b, &rec)) {
        if (rec.sec_tag != sec_tag)
            continue;
        tag_seen = 1;
        key_seen |= rec.slot == STORE_SLOT_CLIENT_KEY;
        if (how == STORE_MERGE_REPLACE_TAGS || rec.slot == slot)
            found = 1;
    }
    if (how == STORE_MERGE_KEEP_KEYS)
        found = tag_seen && (slot != STORE_SLOT_CLIENT_KEY || key_seen);
    b->index = keep_index;
    b->pos = keep_pos;
    return found;
}

static int source_hash(bundle_view *b, const bundle_record *rec, uint8_t out[32])
{
    uint8_t buf[COPY_CHUNK];
    sha256_ctx sha;
    sha256_init(&sha);
    for (uint32_t done = 0; done < rec->length;) {
        uint32_t n = rec->length - done < COPY_CHUNK ? rec->length - done : COPY_CHUNK;
        if (b->src->read(b->src->ctx, rec->payload_off + done, buf, n))
            return -1;
        sha256_update(&sha, buf, n);
        done += n;
    }
    sha256_final(&sha, out);
    return 0;
}

/* A bundle record into the new bank; its payload comes from the bundle's reader. */
static store_err writer_add_record(writer *w, bundle_view *b, const bundle_record *rec)
{
    store_slot meta = {rec->sec_tag, rec->slot, rec->encoding, rec->flags, rec->length, {0}, 0};
    if (source_hash(b, rec, meta.sha256))
        return STORE_E_FLASH;
    store_err e = writer_room(w, rec->length);
    uint32_t dst = bank_base(w->bank) + w->off;
    /* The record head goes on last; harmless either way, the bank header decides. */
    if (e != STORE_OK ||
        (e = writer_payload(dst + st.rec_head, b->src->read, b->src->ctx, rec->payload_off,
                            rec->length)) != STORE_OK ||
        (e = writer_head(dst, &meta)) != STORE_OK)
        return e;
    w->off += st.rec_head + pad(rec->length);
    w->count++;
    return STORE_OK;
}

static int key_before(uint32_t tag_a, uint8_t slot_a, uint32_t tag_b, uint8_t slot_b)
{
    return tag_a < tag_b || (tag_a == tag_b && slot_a < slot_b);
}

store_err store_apply(bundle_view *b, store_merge how)
{
    writer w;
    store_err e = writer_begin(&w);
    if (e != STORE_OK)
        return e;
    /* Merge two lists already in canonical order; kept old slots never share a key with a
     * bundle slot, so (sec_tag, slot) decides the order between the lists. */
    uint16_t old_i = 0;
    store_slot old;
    int have_old = 0;
    bundle_record rec;
    b->index = 0;
    b->pos = b->first_record;
    int have_new = bundle_next(b, &rec);
    for (;;) {
        while (!have_old && old_i < st.count) {
            if (store_get(old_i++, &old))
                return STORE_E_FLASH;
            if (!store_replaced_by(b, old.sec_tag, old.slot, how))
                have_old = 1;
        }
        if (!have_old && !have_new)
            break;
        if (have_old && (!have_new || key_before(old.sec_tag, old.slot, rec.sec_tag, rec.slot))) {
            e = writer_add(&w, &old, old.data_addr);
            have_old = 0;
        } else {
            e = writer_add_record(&w, b, &rec);
            have_new = bundle_next(b, &rec);
        }
        if (e != STORE_OK)
            return e;
    }
    return writer_commit(&w);
}

static int read_mem(void *ctx, uint32_t off, void *buf, uint32_t n)
{
    memcpy(buf, (const uint8_t *)ctx + off, n);
    return 0;
}

store_err store_put(const store_slot *meta, const uint8_t *data)
{
    writer w;
    store_err e;
    int placed = 0;
    if ((e = writer_begin(&w)) != STORE_OK)
        return e;
    for (uint16_t i = 0; i <= st.count; i++) {
        store_slot s;
        if (i < st.count && store_get(i, &s))
            return STORE_E_FLASH;
        if (i < st.count && s.sec_tag == meta->sec_tag && s.slot == meta->slot)
            continue;
        if (!placed &&
            (i == st.count || key_before(meta->sec_tag, meta->slot, s.sec_tag, s.slot))) {
            uint32_t dst = bank_base(w.bank) + w.off;
            if ((e = writer_room(&w, meta->length)) != STORE_OK ||
                (e = writer_payload(dst + st.rec_head, read_mem, (void *)(uintptr_t)data, 0,
                                    meta->length)) != STORE_OK ||
                (e = writer_head(dst, meta)) != STORE_OK)
                return e;
            w.off += st.rec_head + pad(meta->length);
            w.count++;
            placed = 1;
        }
        if (i < st.count && (e = writer_add(&w, &s, s.data_addr)) != STORE_OK)
            return e;
    }
    return writer_commit(&w);
}

store_err store_delete(uint32_t sec_tag, uint8_t slot, int all, uint16_t *found)
{
    writer w;
    uint16_t removed = 0;
    store_err e;
    for (uint16_t i = 0; i < st.count; i++) {
        store_slot s;
        if (store_get(i, &s))
            return STORE_E_FLASH;
        if (all || (s.sec_tag == sec_tag && (slot == 0xFF || s.slot == slot)))
            removed++;
    }
    if (found)
        *found = removed;
    if (removed == 0)
        return STORE_OK; /* nothing to change: keep the flash untouched */
    if ((e = writer_begin(&w)) != STORE_OK)
        return e;
    for (uint16_t i = 0; i < st.count; i++) {
        store_slot s;
        if (store_get(i, &s))
            return STORE_E_FLASH;
        if (all || (s.sec_tag == sec_tag && (slot == 0xFF || s.slot == slot)))
            continue;
        if ((e = writer_add(&w, &s, s.data_addr)) != STORE_OK)
            return e;
    }
    return writer_commit(&w);
}
