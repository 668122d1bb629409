/*
 * qemu-fph: the virtio-balloon free page bitmap protocol, driven by the
 * test acting as the guest driver, across a real migration.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "libqos/fph-driver.h"
#include "migration-helpers.h"
#include "standard-headers/linux/virtio_balloon.h"
#include "standard-headers/linux/virtio_config.h"
#include "hw/virtio/free-page-bitmap.h"

#define PAGE                4096ULL
#define MiB                 (1ULL << 20)
#define TIMEOUT_US          (30 * 1000 * 1000)

/* Guest data: 16 MiB at 128 MiB, far above what the allocator hands out. */
#define DATA_START          (128 * MiB)
#define DATA_PAGES          4096
/* The guest reports the first half of it free. */
#define FREE_PAGES          2048

static uint64_t data_value(uint64_t page, uint64_t generation)
{
    return 0x5a5a000000000000ULL | (generation << 32) | page;
}

static uint64_t data_addr(uint64_t page)
{
    return DATA_START + page * PAGE;
}

static QTestState *start_qemu(const char *extra)
{
    return qtest_initf("-M q35 -m 256M "
                       "-device virtio-balloon-pci,id=balloon,"
                       "free-page-hint=on %s", extra);
}

/* A member of query-migrate's free-page-hints, which must be present. */
static uint64_t migrate_stat(QTestState *qts, const char *name)
{
    QDict *rsp = migrate_query(qts);
    QDict *hints;
    uint64_t value;

    g_assert(qdict_haskey(rsp, "free-page-hints"));
    hints = qdict_get_qdict(rsp, "free-page-hints");
    value = qdict_get_int(hints, name);
    qobject_unref(rsp);
    return value;
}

static void fill_data(QTestState *qts, uint64_t generation)
{
    uint64_t page;

    for (page = 0; page < DATA_PAGES; page++) {
        qtest_writeq(qts, data_addr(page), data_value(page, generation));
    }
}

/*
 * Start a migration throttled so that the bulk stage is still far below
 * the data when the guest answers.
 */
static void start_migration(QTestState *src, QTestState *dst)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/fph-balloon-%d.sock",
                                           g_get_tmp_dir(), getpid());

    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(src, uri, "{}");
}

/* A migration at the default bandwidth, start to end */
static void migrate_unthrottled(QTestState *src, QTestState *dst)
{
    start_migration(src, dst);
    wait_for_migration_complete(src);
    qtest_qmp_eventwait(dst, "RESUME");
}

static void start_slow_migration(QTestState *src, QTestState *dst)
{
    fph_set_max_bandwidth(src, 64 * 1024);
    start_migration(src, dst);
}

static void finish_migration(QTestState *src, QTestState *dst)
{
    fph_set_max_bandwidth(src, 1ULL << 30);
    wait_for_migration_complete(src);
    qtest_qmp_eventwait(dst, "RESUME");
}

typedef struct MigrateCase {
    const char *name;
    const char *src_caps[2];
    const char *both_caps[2];
} MigrateCase;

static const MigrateCase migrate_cases[] = {
    { .name = "plain" },
    { .name = "xbzrle", .src_caps = { "xbzrle" } },
    { .name = "multifd", .both_caps = { "multifd" } },
    { .name = "auto-converge", .src_caps = { "auto-converge" } },
};

static void set_capabilities(const MigrateCase *c, QTestState *src,
                             QTestState *dst)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (c->src_caps[i]) {
            fph_set_capability(src, c->src_caps[i]);
        }
        if (c->both_caps[i]) {
            fph_set_capability(src, c->both_caps[i]);
            fph_set_capability(dst, c->both_caps[i]);
        }
    }
}

/* Report the first FREE_PAGES data pages free for @cmd_id. */
static void report_first_half_free(FphDriver *g, uint32_t cmd_id)
{
    fph_driver_report(g, cmd_id, FPB_CHUNK_F_LAST, DATA_START, DATA_PAGES, 0,
                      FREE_PAGES);
}

/* Every 16th reported page is reused by the guest after the report. */
static void reuse_some_reported_pages(QTestState *qts)
{
    uint64_t page;

    for (page = 0; page < FREE_PAGES; page += 16) {
        qtest_writeq(qts, data_addr(page), data_value(page, 2));
    }
}

/*
 * On the destination: reported pages are zero (never sent) but for the
 * ones written after the report, which have the new data; the others have
 * the original data.
 */
static void check_destination(QTestState *dst)
{
    uint64_t page;

    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t got = qtest_readq(dst, data_addr(page));
        uint64_t want;

        if (page >= FREE_PAGES) {
            want = data_value(page, 1);
        } else if (page % 16 == 0) {
            want = data_value(page, 2);
        } else {
            want = 0;
        }
        if (got != want) {
            g_test_message("page %" PRIu64 ": 0x%" PRIx64 ", expected 0x%"
                           PRIx64, page, got, want);
        }
        g_assert_cmphex(got, ==, want);
    }
}

/* Every data page on the destination has its first data. */
static void check_unchanged(QTestState *dst)
{
    uint64_t page;

    for (page = 0; page < DATA_PAGES; page++) {
        g_assert_cmphex(qtest_readq(dst, data_addr(page)), ==,
                        data_value(page, 1));
    }
}

/* A qemu-fph guest with its data written and a request buffer posted. */
static void start_guest(FphDriver *g, QTestState *qts)
{
    fph_driver_init(g, qts, true);
    fill_data(qts, 1);
    fph_driver_post_slot(g);
}

/* The reported pages were never sent, every other page was. */
static void check_first_half_skipped(QTestState *dst)
{
    uint64_t page;

    for (page = 0; page < DATA_PAGES; page++) {
        g_assert_cmphex(qtest_readq(dst, data_addr(page)), ==,
                        page < FREE_PAGES ? 0 : data_value(page, 1));
    }
}

/*
 * The core property: pages the guest reported free are not sent, and a
 * write the guest makes after reporting a page free reaches the
 * destination anyway.
 */
static void test_skip_free_keep_later_writes(const void *opaque)
{
    const MigrateCase *c = opaque;
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    set_capabilities(c, src, dst);
    start_slow_migration(src, dst);

    cmd_id = fph_driver_wait_request(&g);
    g_assert_cmpuint(cmd_id, !=, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "requests"), ==, 1);

    report_first_half_free(&g, cmd_id);
    g_assert_cmpuint(fph_balloon_counter(src, "answered"), ==, 1);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==,
                     FREE_PAGES);

    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==, 0);
    g_assert_cmpuint(migrate_stat(src, "skipped-pages"), ==, FREE_PAGES);
    g_assert_cmpuint(migrate_stat(src, "answered"), ==, 1);
    g_assert_cmpuint(migrate_stat(src, "bitmap-bytes"), ==, DATA_PAGES / 8);
    qtest_quit(dst);
    qtest_quit(src);
}

static void set_downtime_limit(QTestState *qts, uint64_t ms)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'downtime-limit': %" PRIu64
                             " } }", ms);
}

/*
 * free-page-hint-repeat (the default): the device asks again after a sync
 * that leaves more to send than fits in the downtime limit, and a write
 * after that answer still arrives.  It does not ask after the sync that
 * ends the migration: the guest would answer on the destination.
 */
static void test_repeat(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;
    uint64_t page, skipped;

    start_guest(&g, src);
    /* A sync only once the first pass has sent all it had */
    set_downtime_limit(src, 1);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    /* The first answer reports nothing free: every page goes out. */
    fph_driver_report(&g, cmd_id, FPB_CHUNK_F_LAST, DATA_START, 64, 0, 0);
    fph_driver_post_slot(&g);
    /* Rewritten after the first sync: the next one finds 16 MiB dirty */
    fill_data(src, 2);
    /* The pass and that second round take a second each at 16 MiB/s */
    fph_set_max_bandwidth(src, 16 * MiB);
    g_assert_cmpuint(fph_driver_wait_request(&g), ==, cmd_id + 1);
    fph_set_max_bandwidth(src, 64 * 1024);
    report_first_half_free(&g, cmd_id + 1);
    skipped = migrate_stat(src, "skipped-pages");
    g_assert_cmpuint(skipped, >, 0);
    g_assert_cmpuint(skipped, <=, FREE_PAGES);
    /* Every 16th reported page is written again, after the report */
    for (page = 0; page < FREE_PAGES; page += 16) {
        qtest_writeq(src, data_addr(page), data_value(page, 3));
    }
    set_downtime_limit(src, 300);
    finish_migration(src, dst);
    g_assert_cmpuint(migrate_stat(src, "requests"), ==, 2);
    g_assert_cmpuint(migrate_stat(src, "answered"), ==, 2);
    g_assert_cmpuint(migrate_stat(src, "stale-chunks"), ==, 0);

    /*
     * Pages never reported free have their last data, rewritten ones the
     * newest; the others, reported free in the second answer, what the
     * first pass or the second round sent before the answer.
     */
    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t got = qtest_readq(dst, data_addr(page));

        if (page >= FREE_PAGES) {
            g_assert_cmphex(got, ==, data_value(page, 2));
        } else if (page % 16 == 0) {
            g_assert_cmphex(got, ==, data_value(page, 3));
        } else if (got != data_value(page, 2)) {
            g_assert_cmphex(got, ==, data_value(page, 1));
        }
    }
    qtest_quit(dst);
    qtest_quit(src);
}

/* free-page-hint-repeat off: one request per migration, not one a sync. */
static void test_no_repeat(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-repeat': false"
                             " } }");
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    fph_driver_post_slot(&g);
    finish_migration(src, dst);
    check_destination(dst);
    g_assert_cmpuint(migrate_stat(src, "requests"), ==, 1);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * free-page-hint-wait: an unthrottled migration waits for the guest's
 * answer before its first pass, so the reported pages are never sent.
 */
static void test_wait_for_first_bitmap(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    g_autofree char *params = NULL;
    g_autofree char *info = NULL;
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-wait': 30000 }"
                             " }");
    params = qtest_hmp(src, "info migrate_parameters");
    g_assert(strstr(params, "free-page-hint-wait: 30000 ms"));
    g_assert(strstr(params, "free-page-hint-repeat: on"));
    /*
     * Slow, so that the guest's writes after its report come before the
     * end: with untouched memory skipped, little else is left to send.
     */
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    g_assert_cmpuint(migrate_stat(src, "skipped-pages"), ==, FREE_PAGES);
    info = qtest_hmp(src, "info migrate");
    g_assert(strstr(info, "free page hints: skipped 2048 pages"));
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * The request buffer the device holds travels with the migration, even
 * when the driver's later buffers were taken and given back after it: the
 * destination answers a migration of its own with that buffer.
 */
static void test_slot_survives_migration(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    QTestState *dst2 = start_qemu("-incoming defer");
    g_autofree char *uri2 = g_strdup_printf("unix:%s/fph-balloon-%d-2.sock",
                                            g_get_tmp_dir(), getpid());
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    /* A chunk nobody asked for, taken and given back after the slot. */
    fph_driver_report(&g, 77, FPB_CHUNK_F_LAST, DATA_START, 64, 0, 64);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==, 1);

    /* Postcopy possible: no request, the device keeps holding the slot. */
    fph_set_capability(src, "postcopy-ram");
    fph_set_capability(dst, "postcopy-ram");
    migrate_unthrottled(src, dst);

    /* Now the destination migrates on: it answers the slot it holds. */
    fph_driver_moved_to(&g, dst);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-set-capabilities',"
                             "'arguments': { 'capabilities': [ { "
                             "'capability': 'postcopy-ram', 'state': false"
                             " } ] } }");
    fph_set_max_bandwidth(dst, 64 * 1024);
    qtest_qmp_assert_success(dst2, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri2);
    migrate_qmp(dst, uri2, "{}");
    cmd_id = fph_driver_wait_request(&g);
    g_assert_cmpuint(cmd_id, ==, 1);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(dst);
    finish_migration(dst, dst2);
    check_destination(dst2);
    g_assert_cmpuint(fph_balloon_counter(dst, "bad-input"), ==, 0);
    qtest_quit(dst2);
    qtest_quit(dst);
    qtest_quit(src);
}

/* Without free-page-hint, nothing of the protocol exists: reset works. */
static void test_hints_off_reset(void)
{
    QTestState *qts = qtest_init("-M q35 -m 256M -device virtio-balloon-pci,"
                                 "id=balloon,free-page-hint=off");

    qtest_qmp_assert_success(qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(qts, "RESET");
    g_assert_cmpuint(fph_balloon_counter(qts, "requests"), ==, 0);
    qtest_quit(qts);
}

/*
 * free-page-hint-drop-cache: the request asks the guest to drop its clean
 * page cache first (off by default: every other test sees no flag).
 */
static void test_drop_cache(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    g_autofree char *params = NULL;
    FphDriver g;
    uint32_t cmd_id, flags;

    start_guest(&g, src);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-drop-cache':"
                             " true } }");
    params = qtest_hmp(src, "info migrate_parameters");
    g_assert(strstr(params, "free-page-hint-drop-cache: on"));
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request_flags(&g, &flags);
    g_assert_cmphex(flags, ==, FPB_REQ_F_DROP_CACHE);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* The parameter is bounded, with a clear error. */
static void test_wait_parameter_bounds(void)
{
    QTestState *qts = start_qemu("");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'migrate-set-parameters',"
                           "'arguments': { 'free-page-hint-wait': 60001 }"
                           " }");

    g_assert(qdict_haskey(rsp, "error"));
    g_assert(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"),
                    "free-page-hint-wait"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/*
 * An answer that arrives after the migration was cancelled is stale and
 * never applied; a second migration asks again and works.
 */
static void test_cancel_then_again(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    QTestState *dst2;
    FphDriver g;
    uint32_t first, second;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    first = fph_driver_wait_request(&g);

    qtest_qmp_assert_success(src, "{ 'execute': 'migrate_cancel' }");
    wait_for_migration_status(src, "cancelled", NULL);
    qtest_set_expected_status(dst, EXIT_FAILURE);
    qtest_quit(dst);

    report_first_half_free(&g, first);
    g_assert_cmpuint(fph_balloon_counter(src, "stale-chunks"), ==, 1);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==, 0);

    dst2 = start_qemu("-incoming defer");
    fph_driver_post_slot(&g);
    start_slow_migration(src, dst2);
    second = fph_driver_wait_request(&g);
    g_assert_cmpuint(second, ==, first + 1);
    report_first_half_free(&g, second);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==,
                     FREE_PAGES);
    reuse_some_reported_pages(src);
    finish_migration(src, dst2);
    check_destination(dst2);
    qtest_quit(dst2);
    qtest_quit(src);
}

/* A device reset in the middle forgets the request: its answer is stale. */
static void test_reset_in_the_middle(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);

    /* The driver resets the device and sets it up again. */
    fph_driver_init(&g, src, true);
    report_first_half_free(&g, cmd_id);
    g_assert_cmpuint(fph_balloon_counter(src, "stale-chunks"), ==, 1);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==, 0);

    finish_migration(src, dst);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/* With postcopy possible, no page may be skipped: no request at all. */
static void test_postcopy_no_hints(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;

    start_guest(&g, src);
    fph_set_capability(src, "postcopy-ram");
    fph_set_capability(dst, "postcopy-ram");
    migrate_unthrottled(src, dst);
    g_assert_cmpuint(fph_balloon_counter(src, "requests"), ==, 0);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * Bad input from the guest is counted and ignored, never applied, and the
 * migration moves every page intact.
 */
static void test_bad_input(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    uint64_t first_pfn = DATA_START / PAGE;
    FphDriver g;
    uint32_t cmd_id;
    uint8_t *chunk;
    size_t len;
    uint64_t expected_bad = 0;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);

    /* Shorter than a header. */
    chunk = fph_chunk_new(&len, cmd_id, 0, first_pfn, 64, 0, 64);
    fph_driver_send(&g, chunk, 10);
    expected_bad++;
    /* Unknown flag, bad page size, bitmap length not matching. */
    fpb_build_chunk_header(chunk, cmd_id, 1 << 7, first_pfn, PAGE, 64);
    fph_driver_send(&g, chunk, len);
    expected_bad++;
    fpb_build_chunk_header(chunk, cmd_id, 0, first_pfn, 1000, 64);
    fph_driver_send(&g, chunk, len);
    expected_bad++;
    fpb_build_chunk_header(chunk, cmd_id, 0, first_pfn, PAGE, 64);
    fph_driver_send(&g, chunk, len - 1);
    expected_bad++;
    /* nr_bits not a multiple of 64, and a range wrapping around 2^64. */
    fpb_build_chunk_header(chunk, cmd_id, 0, first_pfn, PAGE, 63);
    fph_driver_send(&g, chunk, len);
    expected_bad++;
    fpb_build_chunk_header(chunk, cmd_id, 0, UINT64_MAX - 8, PAGE, 64);
    fph_driver_send(&g, chunk, len);
    expected_bad++;
    /* A command id never issued. */
    fpb_build_chunk_header(chunk, cmd_id + 1000, 0, first_pfn, PAGE, 64);
    fph_driver_send(&g, chunk, len);
    expected_bad++;
    g_free(chunk);

    /* Free bits beyond the end of RAM (256 MiB): the whole chunk is out. */
    fph_driver_report(&g, cmd_id, 0, DATA_START, 65536, 0, 65536);
    expected_bad++;
    /* In the PCI hole below 4 GiB, and the BIOS ROM at its top. */
    fph_driver_report(&g, cmd_id, 0, 0xe0000000ULL, 64, 0, 1);
    expected_bad++;
    fph_driver_report(&g, cmd_id, 0, 0xfffc0000ULL, 64, 63, 1);
    expected_bad++;

    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==,
                     expected_bad);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==, 0);

    /* An empty last chunk ends the answer; one more chunk is refused. */
    fph_driver_report(&g, cmd_id, FPB_CHUNK_F_LAST, DATA_START, 64, 0, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "answered"), ==, 1);
    fph_driver_report(&g, cmd_id, 0, DATA_START, 64, 0, 64);
    expected_bad++;
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==,
                     expected_bad);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==, 0);

    finish_migration(src, dst);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A request buffer in MMIO (here the device's own common configuration,
 * where the request's flags would land on the status register) is
 * refused: giving it back with a request written would write to the
 * device behind it.  The device stays set up and hints still work with a
 * buffer in RAM.
 */
static void test_slot_in_mmio(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;

    fph_driver_init(&g, src, true);
    fill_data(src, 1);
    fph_driver_post_slot_at(&g, fph_driver_common_cfg(&g) + 16);
    g_assert_cmpuint(fph_driver_wait_slot(&g), ==, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"),
                     ==, 1);
    g_assert_cmphex(fph_driver_status(&g) & VIRTIO_CONFIG_S_DRIVER_OK, !=, 0);

    fph_driver_post_slot(&g);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    g_assert_cmphex(fph_driver_status(&g) & VIRTIO_CONFIG_S_DRIVER_OK, !=, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"),
                     ==, 1);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * The device looks at one full chunk's bits per turn of the main loop and
 * goes on in the next turn: a queue full of the largest chunks is all
 * consumed and applied, but never in one stretch with the BQL held.  The
 * chunks describe 32 GiB, clear bits over the holes and what the guest
 * does not have.
 */
static void test_queue_of_largest_chunks(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    const unsigned int n = 3;
    g_autofree uint8_t *chunk = NULL;
    size_t len;
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    chunk = fph_chunk_new(&len, cmd_id, 0, 0, FPB_MAX_CHUNK_BITS,
                          DATA_START / PAGE, FREE_PAGES);
    fph_driver_send_queued(&g, chunk, len, n);
    g_assert_cmpuint(fph_balloon_counter(src, "chunks"), ==,
                     n);
    g_assert_cmpuint(fph_balloon_counter(src, "bytes"), ==,
                     n * FPB_MAX_CHUNK_BITS / 8);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"),
                     ==, 0);
    g_assert_cmpuint(fph_balloon_counter(src,
                                         "pages-skipped"),
                     ==, FREE_PAGES);
    /* What a turn cost is measured, for query-migrate and QOM alike */
    g_assert_cmpuint(migrate_stat(src, "longest-turn"), >, 0);
    g_assert_cmpuint(migrate_stat(src, "longest-turn"), ==,
                     fph_balloon_counter(src,
                                         "longest-turn-us"));
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A guest that never answers holds the first pass for free-page-hint-wait
 * at most, and migrate_cancel does not wait for it: here the wait is a
 * minute, and the cancel must land well before.
 */
static void test_cancel_during_wait(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    gint64 cancelled_by;
    QDict *rsp;

    start_guest(&g, src);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-wait': 60000 }"
                             " }");
    start_migration(src, dst);
    fph_driver_wait_request(&g);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate_cancel' }");
    cancelled_by = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    for (;;) {
        const char *status;
        bool cancelled;

        rsp = migrate_query(src);
        status = qdict_get_str(rsp, "status");
        cancelled = !strcmp(status, "cancelled");
        qobject_unref(rsp);
        if (cancelled) {
            break;
        }
        g_assert(g_get_monotonic_time() < cancelled_by);
        g_usleep(10 * 1000);
    }
    qtest_set_expected_status(dst, EXIT_FAILURE);
    qtest_quit(dst);
    qtest_quit(src);
}

/* The bytes of RAM migration has put into its stream so far */
static uint64_t ram_transferred(QTestState *qts)
{
    QDict *rsp = migrate_query(qts);
    uint64_t bytes = 0;

    if (qdict_haskey(rsp, "ram")) {
        bytes = qdict_get_int(qdict_get_qdict(rsp, "ram"), "transferred");
    }
    qobject_unref(rsp);
    return bytes;
}

/* Until the stream stops growing: nobody reads, a write blocks */
static void wait_until_stalled(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;
    uint64_t last = 0, now;
    int same = 0;

    while (same < 5) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(100 * 1000);
        now = ram_transferred(qts);
        same = now && now == last ? same + 1 : 0;
        last = now;
    }
}

static gpointer drain_stream(gpointer opaque)
{
    int fd = GPOINTER_TO_INT(opaque);
    char buf[65536];

    while (read(fd, buf, sizeof(buf)) > 0) {
        continue;
    }
    close(fd);
    return NULL;
}

/* Where nobody reads the stream, for main_loop_waited() */
static int stalled_listener = -1;

static void main_loop_waited(int sig)
{
    static const char msg[] = "the main loop waited for migration's "
                              "bitmap\n";

    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* failing anyway */
    }
    /* Fail the stalled write, so that QEMU can take the SIGTERM */
    close(stalled_listener);
    abort();
}

/*
 * The migration thread holds its bitmap while it sends, for as long as a
 * write to a slow destination blocks.  An answer that comes meanwhile
 * waits in the queue, not in the main loop with the BQL held: the kick
 * returns, the monitor answers, and the answer applies in full once the
 * stream moves again.  Here nobody reads the stream until the answer has
 * been sent; with untouched memory skipped, the pass stalls in the first
 * half of the data.
 */
static void test_answer_while_sending(void)
{
    QTestState *src = start_qemu("");
    g_autofree char *path = g_strdup_printf("%s/fph-stalled-%d.sock",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("unix:%s", path);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct sigaction waited = { .sa_handler = main_loop_waited };
    g_autofree uint8_t *chunk = NULL;
    int listener, stream;
    GThread *drain;
    FphDriver g;
    uint32_t cmd_id;
    size_t len;

    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert(listener >= 0);
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    unlink(path);
    g_assert(!bind(listener, (struct sockaddr *)&addr, sizeof(addr)));
    g_assert(!listen(listener, 1));
    stalled_listener = listener;

    start_guest(&g, src);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-wait': 0 } }");
    /*
     * 400 KiB a rate-limit window: the socket fills in the first one, in
     * the middle of an iteration; the pass is still far below the data
     * when the answer applies, an iteration after the stream moves.
     */
    fph_set_max_bandwidth(src, 4 * MiB);
    migrate_qmp(src, uri, "{}");
    cmd_id = fph_driver_wait_request(&g);
    wait_until_stalled(src);

    /* The second half: the pass stalls in the first, which it reaches */
    chunk = fph_chunk_new(&len, cmd_id, FPB_CHUNK_F_LAST, DATA_START / PAGE,
                          DATA_PAGES, FREE_PAGES, DATA_PAGES - FREE_PAGES);
    sigaction(SIGALRM, &waited, NULL);
    alarm(TIMEOUT_US / G_USEC_PER_SEC);
    fph_driver_queue(&g, chunk, len, 1);
    g_assert_cmpuint(migrate_stat(src, "chunks"), ==, 0);
    g_assert_cmpuint(migrate_stat(src, "skipped-pages"), ==, 0);
    alarm(0);

    stream = accept(listener, NULL, NULL);
    g_assert(stream >= 0);
    drain = g_thread_new("drain", drain_stream, GINT_TO_POINTER(stream));
    fph_driver_wait_queued(&g);
    g_assert_cmpuint(migrate_stat(src, "chunks"), ==, 1);
    g_assert_cmpuint(migrate_stat(src, "stale-chunks"), ==, 0);
    g_assert_cmpuint(migrate_stat(src, "answered"), ==, 1);
    g_assert_cmpuint(migrate_stat(src, "skipped-pages"), ==,
                     DATA_PAGES - FREE_PAGES);

    fph_set_max_bandwidth(src, 1ULL << 30);
    wait_for_migration_complete(src);
    qtest_quit(src);
    g_thread_join(drain);
    close(listener);
    unlink(path);
}

/* Send a chain of a device-readable and a device-writable buffer. */
static void send_mixed_chain(FphDriver *g, const void *chunk, size_t len)
{
    uint64_t out = guest_alloc(&g->alloc, len);
    uint64_t in = guest_alloc(&g->alloc, FPB_REQ_SIZE);
    uint32_t head;

    qtest_memwrite(g->qts, out, chunk, len);
    head = qvirtqueue_add(g->qts, g->vq, out, len, false, true);
    qvirtqueue_add(g->qts, g->vq, in, FPB_REQ_SIZE, true, false);
    qvirtqueue_kick(g->qts, &g->dev->vdev, g->vq, head);
    qvirtio_wait_used_elem(g->qts, &g->dev->vdev, g->vq, head, NULL,
                           TIMEOUT_US);
}

/*
 * Messages a hostile or broken driver may send while a request is
 * current, beyond the parser's classes: each is counted as bad input
 * exactly once, none is applied, and the migration moves every page.
 */
static void test_hostile_messages(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    uint64_t first_pfn = DATA_START / PAGE;
    g_autofree uint8_t *chunk = NULL;
    g_autofree uint8_t *huge = NULL;
    uint64_t mmio;
    uint32_t head;
    size_t len;
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    chunk = fph_chunk_new(&len, cmd_id, 0, first_pfn, 64, 0, 64);

    /* Longer than the largest chunk the protocol allows */
    huge = g_malloc0(FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8 + 8);
    fpb_build_chunk_header(huge, cmd_id, 0, first_pfn, PAGE,
                           FPB_MAX_CHUNK_BITS);
    fph_driver_send(&g, huge, FPB_CHUNK_HEADER_SIZE +
                    FPB_MAX_CHUNK_BITS / 8 + 8);
    /* A chunk chained to a device-writable buffer */
    send_mixed_chain(&g, chunk, len);
    /* Pages smaller than the target page */
    fpb_build_chunk_header(chunk, cmd_id, 0, first_pfn, PAGE / 2, 64);
    fph_driver_send(&g, chunk, len);
    /* A chunk read from the device's own registers */
    mmio = fph_driver_common_cfg(&g);
    head = qvirtqueue_add(src, g.vq, mmio, FPB_CHUNK_HEADER_SIZE + 8, false,
                          false);
    qvirtqueue_kick(src, &g.dev->vdev, g.vq, head);
    qvirtio_wait_used_elem(src, &g.dev->vdev, g.vq, head, NULL, TIMEOUT_US);

    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"),
                     ==, 4);
    g_assert_cmpuint(fph_balloon_counter(src,
                                         "pages-skipped"),
                     ==, 0);
    g_assert_cmphex(fph_driver_status(&g) & VIRTIO_CONFIG_S_DRIVER_OK, !=, 0);
    finish_migration(src, dst);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A zero-length buffer breaks the virtqueue rules: the device stops and
 * asks for a reset (VIRTIO_CONFIG_S_NEEDS_RESET), QEMU keeps running, and
 * a driver that resets and sets up again gets working hints.
 */
static void test_zero_length_buffer(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;
    FphDriver g;
    uint64_t addr;
    uint32_t head, cmd_id;

    start_guest(&g, src);
    addr = guest_alloc(&g.alloc, 64);
    head = qvirtqueue_add(src, g.vq, addr, 0, false, false);
    qvirtqueue_kick(src, &g.dev->vdev, g.vq, head);
    while (!(fph_driver_status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        g_assert(g_get_monotonic_time() < deadline);
        qtest_clock_step(src, 100);
    }

    fph_driver_init(&g, src, true);
    fph_driver_post_slot(&g);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A flood of chunks of a request that ended: all counted as stale, none
 * applied, each turn of the main loop bounded, and the migration
 * completes with every page.
 */
static void test_flood_of_stale_chunks(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    const unsigned int batches = 2000, per_batch = 50;
    g_autofree uint8_t *chunk = NULL;
    size_t len;
    unsigned int i;
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate_cancel' }");
    wait_for_migration_status(src, "cancelled", NULL);
    qtest_set_expected_status(dst, EXIT_FAILURE);
    qtest_quit(dst);

    chunk = fph_chunk_new(&len, cmd_id, 0, DATA_START / PAGE, 64, 0, 64);
    for (i = 0; i < batches; i++) {
        fph_driver_send_queued(&g, chunk, len, per_batch);
    }
    g_assert_cmpuint(fph_balloon_counter(src, "chunks"), ==,
                     batches * per_batch);
    g_assert_cmpuint(fph_balloon_counter(src,
                                         "stale-chunks"),
                     ==, batches * per_batch);
    g_assert_cmpuint(fph_balloon_counter(src,
                                         "pages-skipped"),
                     ==, 0);

    dst = start_qemu("-incoming defer");
    start_migration(src, dst);
    finish_migration(src, dst);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A driver that never posts a request buffer gets no request, and holds
 * the first pass for free-page-hint-wait at most: the migration
 * completes.
 */
static void test_no_slot_ever(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;

    fph_driver_init(&g, src, true);
    fill_data(src, 1);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'free-page-hint-wait': 500 } }");
    migrate_unthrottled(src, dst);
    check_unchanged(dst);
    /* Asked at every sync (free-page-hint-repeat), never answered */
    g_assert_cmpuint(migrate_stat(src, "requests"), >=, 1);
    g_assert_cmpuint(migrate_stat(src, "answered"), ==, 0);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * Features written after FEATURES_OK are ignored (the virtio core refuses
 * them): the device keeps the negotiated protocol and hints work.
 */
static void test_features_after_features_ok(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    qvirtio_set_features(&g.dev->vdev, 1ULL << VIRTIO_F_VERSION_1);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    report_first_half_free(&g, cmd_id);
    reuse_some_reported_pages(src);
    finish_migration(src, dst);
    check_destination(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A reset while chunks wait for the next turn of the main loop: they are
 * dropped with the queue, nothing more is applied, and the device works
 * after the driver sets it up again.
 */
static void test_reset_between_turns(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    g_autofree uint8_t *chunk = NULL;
    uint64_t chunks;
    size_t len;
    FphDriver g;
    uint32_t cmd_id;

    start_guest(&g, src);
    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    chunk = fph_chunk_new(&len, cmd_id, 0, 0, FPB_MAX_CHUNK_BITS,
                          DATA_START / PAGE, FREE_PAGES);
    fph_driver_queue(&g, chunk, len, 3);
    fph_driver_reset(&g);
    /* Some turns may have run before the reset, none runs after it. */
    chunks = fph_balloon_counter(src, "chunks");
    g_assert_cmpuint(chunks, >=, 1);
    g_assert_cmpuint(chunks, <=, 3);
    qtest_clock_step(src, 1000);
    g_assert_cmpuint(fph_balloon_counter(src, "chunks"), ==,
                     chunks);
    g_assert_cmpuint(fph_balloon_counter(src,
                                         "pages-skipped"),
                     ==, FREE_PAGES);

    fph_driver_init(&g, src, true);
    fph_driver_post_slot(&g);
    finish_migration(src, dst);
    check_first_half_skipped(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * The free page bitmap's queue index only matches on both sides when the
 * features before it are negotiated too: FEATURES_OK is refused without.
 */
static void test_bitmap_without_dependencies(void)
{
    QTestState *qts = start_qemu("");
    FphDriver g;

    fph_driver_init(&g, qts, false);
    fph_driver_reset(&g);
    /* Not qvirtio_set_features(), which insists on FEATURES_OK */
    g.dev->vdev.bus->set_features(&g.dev->vdev,
                                  (1ULL << VIRTIO_F_VERSION_1) |
                                  (1ULL << FPH_FEATURE_BITMAP));
    g.dev->vdev.bus->set_status(&g.dev->vdev,
                                fph_driver_status(&g) |
                                VIRTIO_CONFIG_S_FEATURES_OK);
    g_assert_cmphex(fph_driver_status(&g) & VIRTIO_CONFIG_S_FEATURES_OK, ==,
                    0);
    qtest_quit(qts);
}

/*
 * A destination whose balloon has no bitmap (stock QEMU, or here qemu-fph
 * with free-page-bitmap=off) cannot load the device of a guest that uses
 * it.  With return-path the source learns of the failure, says in the
 * migration's error what to set, and keeps running its guest.
 */
static void test_destination_without_bitmap(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = qtest_init("-M q35 -m 256M -device virtio-balloon-pci,"
                                 "id=balloon,free-page-hint=on,"
                                 "free-page-bitmap=off -incoming defer");
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;
    FphDriver g;
    QDict *rsp;
    const char *desc = NULL;

    start_guest(&g, src);
    fph_set_capability(src, "return-path");
    fph_set_capability(dst, "return-path");
    qtest_set_expected_status(dst, EXIT_FAILURE);
    start_migration(src, dst);
    for (;;) {
        rsp = migrate_query(src);
        if (qdict_haskey(rsp, "error-desc")) {
            desc = qdict_get_str(rsp, "error-desc");
            break;
        }
        g_assert(g_get_monotonic_time() < deadline);
        qobject_unref(rsp);
        g_usleep(10 * 1000);
    }
    g_assert_cmpstr(qdict_get_str(rsp, "status"), ==, "failed");
    g_assert(strstr(desc, "free-page-bitmap=off"));
    qobject_unref(rsp);
    rsp = qtest_qmp(src, "{ 'execute': 'query-status' }");
    g_assert(qdict_get_bool(qdict_get_qdict(rsp, "return"), "running"));
    qobject_unref(rsp);
    qtest_quit(dst);
    qtest_quit(src);
}

/* A driver that does not negotiate the bitmap sees the stock device. */
static void test_not_negotiated(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    FphDriver g;

    fph_driver_init(&g, src, false);
    fill_data(src, 1);
    migrate_unthrottled(src, dst);
    g_assert_cmpuint(fph_balloon_counter(src, "requests"), ==, 0);
    check_unchanged(dst);
    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * A stock driver (feature bit 3 only) still gets stock hinting, with no
 * iothread given on the command line.
 */
static void test_stock_hints_without_iothread(void)
{
    QTestState *src = start_qemu("");
    QTestState *dst = start_qemu("-incoming defer");
    uint64_t block = 4 * MiB, page;
    uint32_t cmd_id = 0, head, id_le;
    uint64_t id_addr;
    FphDriver g;
    gint64 deadline;

    fph_driver_init(&g, src, false);
    fill_data(src, 1);
    start_slow_migration(src, dst);

    /* The device asks through the config space: wait for a command id. */
    deadline = g_get_monotonic_time() + TIMEOUT_US;
    while (cmd_id < VIRTIO_BALLOON_CMD_ID_DONE + 1 ||
           cmd_id < 0x80000000u) {
        g_assert(g_get_monotonic_time() < deadline);
        cmd_id = qvirtio_config_readl(&g.dev->vdev, 8);
        g_usleep(1000);
    }

    /* Start the round with its id, then report one 4 MiB block free. */
    id_addr = guest_alloc(&g.alloc, sizeof(id_le));
    qtest_writel(src, id_addr, cmd_id);
    head = qvirtqueue_add(src, g.hint_vq, id_addr, sizeof(id_le), false,
                          false);
    qvirtqueue_kick(src, &g.dev->vdev, g.hint_vq, head);
    qvirtio_wait_used_elem(src, &g.dev->vdev, g.hint_vq, head, NULL,
                           TIMEOUT_US);
    head = qvirtqueue_add(src, g.hint_vq, DATA_START, block, true, false);
    qvirtqueue_kick(src, &g.dev->vdev, g.hint_vq, head);
    qvirtio_wait_used_elem(src, &g.dev->vdev, g.hint_vq, head, NULL,
                           TIMEOUT_US);

    finish_migration(src, dst);
    for (page = 0; page < DATA_PAGES; page++) {
        g_assert_cmphex(qtest_readq(dst, data_addr(page)), ==,
                        page < block / PAGE ? 0 : data_value(page, 1));
    }
    g_assert_cmpuint(fph_balloon_counter(src, "requests"), ==, 0);
    qtest_quit(dst);
    qtest_quit(src);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(migrate_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/fph-balloon/migrate/skip-free-keep-later-writes/%s",
            migrate_cases[i].name);

        qtest_add_data_func(path, &migrate_cases[i],
                            test_skip_free_keep_later_writes);
    }
    qtest_add_func("/fph-balloon/migrate/cancel-then-again",
                   test_cancel_then_again);
    qtest_add_func("/fph-balloon/migrate/reset-in-the-middle",
                   test_reset_in_the_middle);
    qtest_add_func("/fph-balloon/migrate/postcopy-no-hints",
                   test_postcopy_no_hints);
    qtest_add_func("/fph-balloon/migrate/stock-hints-without-iothread",
                   test_stock_hints_without_iothread);
    qtest_add_func("/fph-balloon/migrate/no-repeat", test_no_repeat);
    qtest_add_func("/fph-balloon/migrate/repeat", test_repeat);
    qtest_add_func("/fph-balloon/migrate/answer-while-sending",
                   test_answer_while_sending);
    qtest_add_func("/fph-balloon/migrate/wait-for-first-bitmap",
                   test_wait_for_first_bitmap);
    qtest_add_func("/fph-balloon/parameters/drop-cache", test_drop_cache);
    qtest_add_func("/fph-balloon/parameters/wait-bounds",
                   test_wait_parameter_bounds);
    qtest_add_func("/fph-balloon/device/hints-off-reset",
                   test_hints_off_reset);
    qtest_add_func("/fph-balloon/migrate/slot-survives-migration",
                   test_slot_survives_migration);
    qtest_add_func("/fph-balloon/migrate/bad-input", test_bad_input);
    qtest_add_func("/fph-balloon/hostile/slot-in-mmio", test_slot_in_mmio);
    qtest_add_func("/fph-balloon/hostile/messages", test_hostile_messages);
    qtest_add_func("/fph-balloon/hostile/zero-length-buffer",
                   test_zero_length_buffer);
    qtest_add_func("/fph-balloon/hostile/flood-of-stale-chunks",
                   test_flood_of_stale_chunks);
    qtest_add_func("/fph-balloon/hostile/no-slot-ever", test_no_slot_ever);
    qtest_add_func("/fph-balloon/hostile/features-after-features-ok",
                   test_features_after_features_ok);
    qtest_add_func("/fph-balloon/hostile/reset-between-turns",
                   test_reset_between_turns);
    qtest_add_func("/fph-balloon/hostile/bitmap-without-dependencies",
                   test_bitmap_without_dependencies);
    qtest_add_func("/fph-balloon/hostile/cancel-during-wait",
                   test_cancel_during_wait);
    qtest_add_func("/fph-balloon/hostile/queue-of-largest-chunks",
                   test_queue_of_largest_chunks);
    qtest_add_func("/fph-balloon/migrate/destination-without-bitmap",
                   test_destination_without_bitmap);
    qtest_add_func("/fph-balloon/migrate/not-negotiated",
                   test_not_negotiated);
    return g_test_run();
}
