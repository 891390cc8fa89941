/* Power cut at every flash byte of a commit: after remounting, the store holds exactly the
 * previous set or exactly the new one. */
#include <stdio.h>
#include <string.h>

#include "flash_ram.h"
#include "sha256.h"
#include "store.h"
#include "test_support.h"

static uint8_t base_image[RAM_FLASH_SIZE];

/* A digest of what LIST would show: every slot's key, metadata and payload digest. */
static void fingerprint(uint8_t out[32])
{
    sha256_ctx ctx;
    sha256_init(&ctx);
    for (uint16_t i = 0; i < store_count(); i++) {
        store_slot s;
        if (store_get(i, &s) != 0) {
            memset(out, 0, 32);
            return;
        }
        uint8_t payload_digest[32];
        sha256_ctx p;
        sha256_init(&p);
        for (uint32_t off = 0; off < s.length; off++) {
            uint8_t b;
            flash_read(s.data_addr + off, &b, 1);
            sha256_update(&p, &b, 1);
        }
        sha256_final(&p, payload_digest);
        if (memcmp(payload_digest, s.sha256, 32) != 0) {
            memset(out, 0, 32); /* stored digest must describe the stored bytes */
            return;
        }
        sha256_update(&ctx, &s, 12); /* sec_tag, slot, encoding, flags, length */
        sha256_update(&ctx, s.sha256, 32);
    }
    sha256_final(&ctx, out);
}

static int stage_and_apply_how(const uint8_t *bundle, uint32_t len, store_merge how)
{
    bundle_src src = {store_staging_read, NULL, len};
    bundle_view v;
    if (store_staging_erase(len) != STORE_OK || store_staging_program(0, bundle, len) != STORE_OK)
        return -1;
    if (bundle_check(&src, &v) != BUNDLE_OK)
        return -2;
    return store_apply(&v, how) == STORE_OK ? 0 : -3;
}

static int stage_and_apply(const uint8_t *bundle, uint32_t len)
{
    bundle_src src = {store_staging_read, NULL, len};
    bundle_view v;
    if (store_staging_erase(len) != STORE_OK || store_staging_program(0, bundle, len) != STORE_OK)
        return -1;
    if (bundle_check(&src, &v) != BUNDLE_OK)
        return -2;
    return store_apply(&v, STORE_MERGE_REPLACE_SLOTS) == STORE_OK ? 0 : -3;
}

typedef int (*change_fn)(void);

static int change_new(void)
{
    /* The bundle is staged beforehand; only the apply is under test. */
    bundle_src src = {store_staging_read, NULL, store_new_len};
    bundle_view v;
    if (bundle_check(&src, &v) != BUNDLE_OK)
        return -2;
    return store_apply(&v, STORE_MERGE_REPLACE_SLOTS) == STORE_OK ? 0 : -3;
}

static int change_delete(void)
{
    uint16_t found;
    return store_delete(42, 0xFF, 0, &found) == STORE_OK && found > 0 ? 0 : -1;
}

/* Cut power at every byte of `change`, starting each time from `base_image`. */
static void cut_everywhere(const char *name, change_fn change)
{
    uint8_t before[32], after[32], now[32];
    char msg[160];

    memcpy(ram_flash, base_image, RAM_FLASH_SIZE);
    store_mount();
    fingerprint(before);
    ram_flash_spent = 0;
    ram_flash_budget = -1;
    if (change() != 0) {
        fail("store", name, "the change itself failed");
        return;
    }
    long total = ram_flash_spent;
    store_mount();
    fingerprint(after);
    checks++;
    if (memcmp(before, after, 32) == 0) {
        fail("store", name, "the change changed nothing");
        return;
    }
    int olds = 0;
    for (long cut = 0; cut < total; cut++) {
        memcpy(ram_flash, base_image, RAM_FLASH_SIZE);
        store_mount();
        ram_flash_budget = cut;
        if (setjmp(ram_flash_cut) == 0) {
            change();
            snprintf(msg, sizeof msg, "cut at byte %ld of %ld did not happen", cut, total);
            fail("store", name, msg);
            ram_flash_budget = -1;
            return;
        }
        ram_flash_budget = -1;
        store_mount();
        fingerprint(now);
        checks++;
        if (memcmp(now, before, 32) == 0) {
            olds++;
        } else if (memcmp(now, after, 32) != 0) {
            snprintf(msg, sizeof msg, "cut at byte %ld of %ld left a mixed set", cut, total);
            fail("store", name, msg);
            return;
        }
    }
    /* The commit marker is the last byte written: every cut before it keeps the old set. */
    if (olds != total) {
        snprintf(msg, sizeof msg, "%d of %ld cuts kept the old set", olds, total);
        fail("store", name, msg);
    }
    printf("store %s (write block %u): %ld cut points, all kept the previous set; uncut gives "
           "the new one\n",
           name, (unsigned)ram_flash_write_block, total);
}

static void check_merged(void)
{
    /* old: 7 psk, 7 psk_identity, 42 root_ca x2, 42 client_cert, 42 client_key;
     * new: 42 client_cert (PEM), 99 root_ca. A bundle slot replaces the same slot. */
    static const struct {
        uint32_t tag;
        uint8_t slot, enc;
    } want[] = {{7, 4, 2}, {7, 5, 2}, {42, 0, 0}, {42, 0, 0}, {42, 1, 1}, {42, 2, 0}, {99, 0, 0}};
    checks++;
    if (store_count() != sizeof want / sizeof want[0]) {
        fail("store", "merge", "wrong slot count after merge");
        return;
    }
    for (uint16_t i = 0; i < store_count(); i++) {
        store_slot s;
        store_get(i, &s);
        if (s.sec_tag != want[i].tag || s.slot != want[i].slot || s.encoding != want[i].enc) {
            fail("store", "merge", "merged set differs");
            return;
        }
    }
}

/* The protocol's merge: a tag in the bundle replaces the stored tag, except a client_key
 * the bundle does not carry. */
static void test_merge_modes(void)
{
    static const struct {
        store_merge how;
        const char *name;
        uint16_t count;      /* slots after applying store_keep over store_old */
        int key_kept;        /* tag 42 client_key still there */
    } cases[] = {
        {STORE_MERGE_REPLACE_SLOTS, "replace-slots", 5, 1},
        {STORE_MERGE_REPLACE_TAGS, "replace-tags", 3, 0},
        {STORE_MERGE_KEEP_KEYS, "keep-keys", 4, 1},
        {STORE_MERGE_REPLACE_ALL, "replace-all", 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
        store_mount();
        checks++;
        if (stage_and_apply(store_old, store_old_len) != 0 ||
            stage_and_apply_how(store_keep, store_keep_len, cases[i].how) != 0) {
            fail("store", cases[i].name, "apply failed");
            continue;
        }
        int key = 0;
        for (uint16_t k = 0; k < store_count(); k++) {
            store_slot s;
            store_get(k, &s);
            key |= s.sec_tag == 42 && s.slot == STORE_SLOT_CLIENT_KEY;
        }
        if (store_count() != cases[i].count || key != cases[i].key_kept)
            fail("store", cases[i].name, "wrong set after merge");
    }
}

/* The RAM flash holds the store to the write block: a program off a block boundary, of a
 * part of a block, or over a programmed block fails (else the tests prove nothing). */
static void test_write_block_enforced(void)
{
    uint8_t b[32];
    uint32_t wb = ram_flash_write_block;
    memset(b, 0, sizeof b);
    memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
    checks++;
    if (wb > 1 && (flash_program(1, b, wb) == 0 || flash_program(0, b, wb - 1) == 0))
        fail("flash", "write block", "an unaligned program was accepted");
    checks++;
    if (flash_program(wb, b, wb) != 0 || flash_program(wb, b, wb) == 0)
        fail("flash", "write block", "a block took a second program");
    memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
    store_mount();
    checks++;
    if (store_write_block() != wb || store_max_slot_size() % wb != 0)
        fail("store", "write block", "the store does not pad to the flash's write block");
}

void test_store_power_cut(void)
{
    test_write_block_enforced();
    if (!store_keep_len) {
        fail("store", "setup", "store_keep vector missing");
        return;
    }
    test_merge_modes();
    if (!store_old_len || !store_new_len) {
        fail("store", "setup", "store_old/store_new vectors missing");
        return;
    }
    memset(ram_flash, 0xFF, RAM_FLASH_SIZE);
    store_mount();
    checks++;
    if (store_count() != 0 || stage_and_apply(store_old, store_old_len) != 0 ||
        store_count() != 6) {
        fail("store", "setup", "could not store the first set");
        return;
    }
    /* Stage the new bundle, then cut power at every byte of applying it. */
    store_staging_erase(store_new_len);
    store_staging_program(0, store_new, store_new_len);
    memcpy(base_image, ram_flash, RAM_FLASH_SIZE);
    cut_everywhere("apply", change_new);

    memcpy(ram_flash, base_image, RAM_FLASH_SIZE);
    store_mount();
    change_new();
    store_mount();
    check_merged();
    uint32_t gen = store_generation();
    /* The next change writes the other bank, erasing the one that held the first set. */
    memcpy(base_image, ram_flash, RAM_FLASH_SIZE);
    cut_everywhere("delete", change_delete);

    memcpy(ram_flash, base_image, RAM_FLASH_SIZE);
    store_mount();
    change_delete();
    store_mount();
    checks++;
    if (store_count() != 3 || store_generation() != gen + 1)
        fail("store", "delete", "deleting tag 42 should leave 7 psk, 7 psk_identity, 99 root_ca");
    uint16_t before = store_count();
    uint16_t found = 0;
    checks++;
    if (store_delete(12345, 0xFF, 0, &found) != STORE_OK || found != 0 || store_count() != before)
        fail("store", "delete-missing", "deleting nothing must change nothing");
}
