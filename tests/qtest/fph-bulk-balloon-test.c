/*
 * qemu-fph: bulk inflate and deflate of virtio-balloon, driven by the test
 * acting as the guest driver: what a well-formed message discards, and
 * that each kind of bad message is refused whole, counted, and leaves
 * guest memory alone.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/fph-driver.h"
#include "migration-helpers.h"
#include "qapi/qmp/qdict.h"
#include "hw/virtio/bulk-balloon.h"

#define PAGE                4096ULL
#define MiB                 (1ULL << 20)
#define GiB                 (1ULL << 30)

/* Guest data: 64 pages at 128 MiB, far above what the allocator uses. */
#define DATA_START          (128 * MiB)
#define DATA_PAGES          64

static uint64_t data_value(uint64_t gpa)
{
    return 0xb1b1000000000000ULL | gpa;
}

#define DATA(page)          (DATA_START + (page) * PAGE)

static uint64_t data_addr(uint64_t page)
{
    return DATA(page);
}

/* Write every 4 KiB page of [@gpa, @gpa + @len), first word only. */
static void fill(QTestState *qts, uint64_t gpa, uint64_t len)
{
    uint64_t a;

    for (a = gpa; a < gpa + len; a += PAGE) {
        qtest_writeq(qts, a, data_value(a));
    }
}

/* Pages of the range: discarded (zero) when @gone, else with their data */
static void check(QTestState *qts, uint64_t gpa, uint64_t len, bool gone)
{
    uint64_t a;

    for (a = gpa; a < gpa + len; a += PAGE) {
        g_assert_cmphex(qtest_readq(qts, a), ==, gone ? 0 : data_value(a));
    }
}

static uint64_t prop(QTestState *qts, const char *name)
{
    g_autofree char *full = g_strconcat("bulk-balloon-", name, NULL);

    return fph_balloon_get(qts, full);
}

/* A message of @n ranges given as address, length pairs */
static uint8_t *message(size_t *len, uint32_t n, const uint64_t *pairs)
{
    uint8_t *buf;
    uint32_t i;

    *len = BULK_HEADER_SIZE + n * BULK_RANGE_SIZE;
    buf = g_malloc0(*len);
    bulk_build_header(buf, BULK_TYPE_RANGES, n);
    for (i = 0; i < n; i++) {
        bulk_build_range(buf, i, pairs[2 * i], pairs[2 * i + 1]);
    }
    return buf;
}

static QTestState *start(FphDriver *d, const char *args, bool bulk)
{
    QTestState *qts = qtest_initf("-M q35 -m 256M %s "
                                  "-device virtio-balloon-pci,id=balloon,"
                                  "free-page-hint=on", args);

    fph_driver_init_balloon(d, qts, bulk);
    fill(qts, DATA_START, DATA_PAGES * PAGE);
    return qts;
}

static void test_inflate_deflate(void)
{
    FphDriver d;
    QTestState *qts = start(&d, "", true);
    /* Out of order; the first and third touch and are merged. */
    const uint64_t ranges[] = {
        data_addr(0), 8 * PAGE,
        data_addr(16), 4 * PAGE,
        data_addr(8), 2 * PAGE,
    };
    size_t len;
    g_autofree uint8_t *msg = message(&len, 3, ranges);

    g_assert(d.features & (1ULL << FPH_FEATURE_BULK));
    fph_driver_send_on(&d, d.inflate_vq, msg, len, false);
    check(qts, data_addr(0), 10 * PAGE, true);
    check(qts, data_addr(10), 6 * PAGE, false);
    check(qts, data_addr(16), 4 * PAGE, true);
    check(qts, data_addr(20), (DATA_PAGES - 20) * PAGE, false);
    g_assert_cmpuint(prop(qts, "messages"), ==, 1);
    g_assert_cmpuint(prop(qts, "discarded-pages"), ==, 14);
    g_assert_cmpuint(prop(qts, "bad-input"), ==, 0);
    /* The ballooned-page bitmap heard of them, */
    g_assert_cmpuint(fph_balloon_get(qts, "ballooned-pages"), ==, 14);

    /* Deflated, the pages are the guest's again. */
    fph_driver_send_on(&d, d.deflate_vq, msg, len, false);
    g_assert_cmpuint(prop(qts, "returned-pages"), ==, 14);
    /* and of their way back. */
    g_assert_cmpuint(fph_balloon_get(qts, "ballooned-pages"), ==, 0);
    fill(qts, data_addr(0), 20 * PAGE);
    check(qts, DATA_START, DATA_PAGES * PAGE, false);
    g_assert_cmpuint(prop(qts, "messages"), ==, 2);
    g_assert_cmpuint(prop(qts, "bad-input"), ==, 0);
    qtest_quit(qts);
}

/*
 * A range across two NUMA nodes' memory backends: one discard per block,
 * both halves gone.
 */
static void test_across_ram_blocks(void)
{
    FphDriver d;
    QTestState *qts = start(&d, "-object memory-backend-ram,id=m0,size=128M "
                            "-object memory-backend-ram,id=m1,size=128M "
                            "-numa node,memdev=m0 -numa node,memdev=m1",
                            true);
    const uint64_t ranges[] = { data_addr(0) - 4 * PAGE, 8 * PAGE };
    size_t len;
    g_autofree uint8_t *msg = message(&len, 1, ranges);

    fill(qts, ranges[0], 4 * PAGE);
    fph_driver_send_on(&d, d.inflate_vq, msg, len, false);
    check(qts, ranges[0], ranges[1], true);
    check(qts, data_addr(4), (DATA_PAGES - 4) * PAGE, false);
    g_assert_cmpuint(prop(qts, "discarded-pages"), ==, 8);
    g_assert_cmpuint(fph_balloon_get(qts, "ballooned-pages"), ==, 8);
    qtest_quit(qts);
}

/*
 * What a bulk inflate discarded is in the ballooned-page bitmap: the
 * migration skips it without reading it, and the destination knows it.
 */
static void test_migrate(void)
{
    FphDriver d;
    QTestState *src = start(&d, "", true);
    QTestState *dst = qtest_initf("-M q35 -m 256M -incoming defer "
                                  "-device virtio-balloon-pci,id=balloon,"
                                  "free-page-hint=on");
    g_autofree char *uri = g_strdup_printf("unix:%s/fph-bulk-%d.sock",
                                           g_get_tmp_dir(), getpid());
    const uint64_t ranges[] = { data_addr(0), 32 * PAGE };
    size_t len;
    g_autofree uint8_t *msg = message(&len, 1, ranges);
    QDict *info;

    fph_driver_send_on(&d, d.inflate_vq, msg, len, false);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(src, uri, "{}");
    wait_for_migration_complete(src);
    qtest_qmp_eventwait(dst, "RESUME");

    info = migrate_query(src);
    g_assert_cmpuint(qdict_get_int(info, "balloon-skipped-pages"), ==, 32);
    qobject_unref(info);
    g_assert_cmpuint(fph_balloon_get(dst, "ballooned-pages"), ==, 32);
    check(dst, data_addr(0), 32 * PAGE, true);
    check(dst, data_addr(32), (DATA_PAGES - 32) * PAGE, false);
    qtest_quit(dst);
    qtest_quit(src);
}

/* A driver that does not take the feature inflates page by page. */
static void test_stock_driver(void)
{
    FphDriver d;
    QTestState *qts = start(&d, "", false);

    g_assert(d.offered & (1ULL << FPH_FEATURE_BULK));
    g_assert(!(d.features & (1ULL << FPH_FEATURE_BULK)));
    fph_driver_balloon_pages(&d, true, data_addr(0), 4);
    check(qts, data_addr(0), 4 * PAGE, true);
    check(qts, data_addr(4), (DATA_PAGES - 4) * PAGE, false);
    g_assert_cmpuint(prop(qts, "messages"), ==, 0);
    qtest_quit(qts);
}

/*
 * Not offered when turned off, nor without free page hints (the device is
 * then stock's), nor on 7.1 machine types
 */
static void test_not_offered(void)
{
    const char *machines[] = {
        "-M q35 -device virtio-balloon-pci,id=balloon,free-page-hint=on,"
        "bulk-balloon=off",
        "-M q35 -device virtio-balloon-pci,id=balloon",
        "-M pc-q35-7.1 -device virtio-balloon-pci,id=balloon,"
        "free-page-hint=on",
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(machines); i++) {
        FphDriver d;
        QTestState *qts = qtest_init(machines[i]);

        fph_driver_init_balloon(&d, qts, true);
        g_assert(!(d.offered & (1ULL << FPH_FEATURE_BULK)));
        qtest_quit(qts);
    }
}

typedef struct BadCase {
    const char *name;
    /* The message: ranges, or raw bytes when @raw_len is set */
    uint32_t nr;
    uint64_t ranges[6];
    size_t raw_len;
    uint32_t raw_type;
    uint32_t raw_nr;
    bool device_writable;
} BadCase;

/*
 * Every bad message but the raw ones also names good data pages 0 to 3
 * (GOOD_GPA, GOOD_LEN), which must stay.
 */
#define GOOD_GPA DATA(0)
#define GOOD_LEN (4 * PAGE)

static const BadCase bad_cases[] = {
    { "short", .raw_len = 4 },
    { "unknown-type", .raw_len = BULK_HEADER_SIZE + BULK_RANGE_SIZE,
      .raw_type = 2, .raw_nr = 1 },
    { "no-range", .raw_len = BULK_HEADER_SIZE, .raw_type = 1 },
    { "too-many-ranges", .raw_len = BULK_HEADER_SIZE + BULK_RANGE_SIZE,
      .raw_type = 1, .raw_nr = BULK_MAX_RANGES + 1 },
    { "wrong-length", .raw_len = BULK_HEADER_SIZE + 3 * BULK_RANGE_SIZE,
      .raw_type = 1, .raw_nr = 2 },
    { "too-long", .raw_len = BULK_HEADER_SIZE +
      (BULK_MAX_RANGES + 1) * BULK_RANGE_SIZE, .raw_type = 1,
      .raw_nr = BULK_MAX_RANGES + 1 },
    { "device-writable", 1, { GOOD_GPA, GOOD_LEN }, .device_writable = true },
    { "empty-range", 2, { GOOD_GPA, GOOD_LEN, DATA(8), 0 } },
    { "unaligned-address", 2, { GOOD_GPA, GOOD_LEN, DATA(8) + 512, PAGE } },
    { "unaligned-length", 2, { GOOD_GPA, GOOD_LEN, DATA(8), PAGE / 2 } },
    { "overflow", 2, { GOOD_GPA, GOOD_LEN, 0xfffffffffffff000ULL, 2 * PAGE } },
    { "out-of-range", 2, { GOOD_GPA, GOOD_LEN, 4 * GiB, PAGE } },
    { "out-of-range-end", 2, { GOOD_GPA, GOOD_LEN,
      256 * MiB - PAGE, 2 * PAGE } },
    { "overlap", 3, { GOOD_GPA, GOOD_LEN, DATA(8), 4 * PAGE, DATA(10), PAGE } },
    { "overlap-same", 2, { GOOD_GPA, GOOD_LEN, DATA(0), 4 * PAGE } },
    /* The BIOS ROM, the VGA window, option ROM RAM of the board */
    { "not-ram/bios", 2, { GOOD_GPA, GOOD_LEN, 0xf0000, 4 * PAGE } },
    { "not-ram/vga-window", 2, { GOOD_GPA, GOOD_LEN, 0xa0000, 4 * PAGE } },
    { "not-ram/option-rom", 2, { GOOD_GPA, GOOD_LEN, 0xc0000, 4 * PAGE } },
    /* From the last low RAM page into the VGA window */
    { "not-ram/ram-then-hole", 2, { GOOD_GPA, GOOD_LEN, 0x9f000, 2 * PAGE } },
};

static void test_bad(const void *opaque)
{
    const BadCase *c = opaque;
    FphDriver d;
    QTestState *qts = start(&d, "", true);
    g_autofree uint8_t *msg = NULL;
    size_t len;
    int round;

    if (c->raw_len) {
        len = c->raw_len;
        msg = g_malloc0(len);
        if (len >= BULK_HEADER_SIZE) {
            bulk_build_header(msg, c->raw_type, c->raw_nr);
            bulk_build_range(msg, 0, GOOD_GPA, GOOD_LEN);
        }
    } else {
        msg = message(&len, c->nr, c->ranges);
    }
    qtest_writeq(qts, 0x9f000, data_value(0x9f000));

    /* Twice the report limit: counted each time, reported ten times. */
    for (round = 0; round < 20; round++) {
        fph_driver_send_on(&d, d.inflate_vq, msg, len, c->device_writable);
    }
    fph_driver_send_on(&d, d.deflate_vq, msg, len, c->device_writable);
    g_assert_cmpuint(prop(qts, "messages"), ==, 21);
    g_assert_cmpuint(prop(qts, "bad-input"), ==, 21);
    g_assert_cmpuint(prop(qts, "discarded-pages"), ==, 0);
    g_assert_cmpuint(prop(qts, "returned-pages"), ==, 0);
    g_assert_cmpuint(fph_balloon_get(qts, "ballooned-pages"), ==, 0);
    check(qts, DATA_START, DATA_PAGES * PAGE, false);
    check(qts, 0x9f000, PAGE, false);

    /* The device still works. */
    {
        const uint64_t good[] = { GOOD_GPA, GOOD_LEN };
        g_autofree uint8_t *ok = message(&len, 1, good);

        fph_driver_send_on(&d, d.inflate_vq, ok, len, false);
        check(qts, data_addr(0), 4 * PAGE, true);
        g_assert_cmpuint(prop(qts, "discarded-pages"), ==, 4);
    }
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/fph-bulk/inflate-deflate", test_inflate_deflate);
    qtest_add_func("/fph-bulk/across-ram-blocks", test_across_ram_blocks);
    qtest_add_func("/fph-bulk/migrate", test_migrate);
    qtest_add_func("/fph-bulk/stock-driver", test_stock_driver);
    qtest_add_func("/fph-bulk/not-offered", test_not_offered);
    for (i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        g_autofree char *path = g_strconcat("/fph-bulk/bad/",
                                            bad_cases[i].name, NULL);

        qtest_add_data_func(path, &bad_cases[i], test_bad);
    }
    return g_test_run();
}
