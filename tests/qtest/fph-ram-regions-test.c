/*
 * qemu-fph: free page hints over every kind of guest RAM (NUMA memdevs, a
 * hotplugged DIMM, memfd and -machine memory-backend=), with the test as
 * the guest's driver, across a real migration.  Pages reported free are
 * not sent; pages written after the report arrive, page by page; a
 * report spanning two RAM blocks is split, not refused; RAM that does not
 * migrate (x-ignore-shared) is guest RAM but never skipped.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qlist.h"
#include "libqos/fph-driver.h"
#include "migration-helpers.h"
#include "hw/virtio/free-page-bitmap.h"

#define PAGE            4096ULL
#define MiB             ((uint64_t)1 << 20)

/* Each area is 4 MiB of guest data; the middle half is reported free. */
#define AREA_PAGES      1024
#define FREE_FIRST      256
#define FREE_PAGES      512
/* Of the reported pages, every REUSE_STRIDE-th is written afterwards. */
#define REUSE_STRIDE    16
#define MAX_AREAS       4

typedef struct RegionCase {
    const char *name;
    const char *ram_args;       /* both sides */
    const char *dst_args;       /* the destination only */
    /* Guest-physical start of each area; 0 ends the list. */
    uint64_t areas[MAX_AREAS];
    /* The first area starts in the DIMM, which the source hotplugs. */
    bool dimm;
} RegionCase;

static const RegionCase region_cases[] = {
    {
        /* Node 0 is [0, 128M), node 1 [128M, 256M): the third area spans. */
        .name = "numa-memdevs",
        .ram_args = "-object memory-backend-ram,id=m0,size=128M "
                    "-object memory-backend-ram,id=m1,size=128M "
                    "-numa node,nodeid=0,memdev=m0 "
                    "-numa node,nodeid=1,memdev=m1",
        .areas = { 64 * MiB, 192 * MiB, 126 * MiB },
    }, {
        .name = "hotplugged-dimm",
        .ram_args = "-m 256M,slots=2,maxmem=1G",
        .dst_args = "-object memory-backend-ram,id=d1,size=128M "
                    "-device pc-dimm,id=dimm1,memdev=d1",
        .dimm = true,
        .areas = { 16 * MiB, 64 * MiB },
    }, {
        .name = "memfd",
        .ram_args = "-object memory-backend-memfd,id=m0,size=256M "
                    "-machine memory-backend=m0",
        .areas = { 64 * MiB, 192 * MiB },
    }, {
        .name = "machine-memory-backend",
        .ram_args = "-object memory-backend-ram,id=m0,size=256M "
                    "-machine memory-backend=m0",
        .areas = { 64 * MiB, 192 * MiB },
    },
};

static uint64_t data_value(uint64_t addr, uint64_t generation)
{
    return 0xa5a5000000000000ULL | (generation << 40) | (addr / PAGE);
}

static QTestState *start_qemu(const RegionCase *c, bool dst)
{
    return qtest_initf("-M q35 -m 256M %s %s "
                       "-device virtio-balloon-pci,id=balloon,"
                       "free-page-hint=on %s", c->ram_args,
                       dst && c->dst_args ? c->dst_args : "",
                       dst ? "-incoming defer" : "");
}

/* Hotplug a 128 MiB DIMM into the source; returns its address. */
static uint64_t hotplug_dimm(QTestState *qts)
{
    QDict *rsp;
    QList *devices;
    QDict *data;
    uint64_t addr;

    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments':"
                             " { 'qom-type': 'memory-backend-ram',"
                             " 'id': 'd1', 'size': %" PRIu64 " } }",
                             128 * MiB);
    qtest_qmp_assert_success(qts, "{ 'execute': 'device_add', 'arguments':"
                             " { 'driver': 'pc-dimm', 'id': 'dimm1',"
                             " 'memdev': 'd1' } }");
    rsp = qtest_qmp(qts, "{ 'execute': 'query-memory-devices' }");
    devices = qdict_get_qlist(rsp, "return");
    g_assert_cmpint(qlist_size(devices), ==, 1);
    data = qdict_get_qdict(qobject_to(QDict, qlist_peek(devices)), "data");
    addr = qdict_get_int(data, "addr");
    qobject_unref(rsp);
    return addr;
}

static size_t area_count(const RegionCase *c)
{
    size_t n = 0;

    while (n < MAX_AREAS && c->areas[n]) {
        n++;
    }
    return n;
}

static void fill_areas(QTestState *qts, const uint64_t *areas, size_t n)
{
    size_t i, page;

    for (i = 0; i < n; i++) {
        for (page = 0; page < AREA_PAGES; page++) {
            uint64_t addr = areas[i] + page * PAGE;

            qtest_writeq(qts, addr, data_value(addr, 1));
        }
    }
}

static bool is_reported(size_t page)
{
    return page >= FREE_FIRST && page < FREE_FIRST + FREE_PAGES;
}

static bool is_reused(size_t page)
{
    return is_reported(page) && (page - FREE_FIRST) % REUSE_STRIDE == 0;
}

static void reuse_some_reported_pages(QTestState *qts, const uint64_t *areas,
                                      size_t n)
{
    size_t i, page;

    for (i = 0; i < n; i++) {
        for (page = 0; page < AREA_PAGES; page++) {
            if (is_reused(page)) {
                uint64_t addr = areas[i] + page * PAGE;

                qtest_writeq(qts, addr, data_value(addr, 2));
            }
        }
    }
}

/*
 * Reported pages read zero on the destination (never sent) but for the
 * ones written after the report; every other page has its data.
 */
static void check_areas(QTestState *dst, const uint64_t *areas, size_t n)
{
    size_t i, page;

    for (i = 0; i < n; i++) {
        for (page = 0; page < AREA_PAGES; page++) {
            uint64_t addr = areas[i] + page * PAGE;
            uint64_t want = is_reused(page) ? data_value(addr, 2) :
                            is_reported(page) ? 0 : data_value(addr, 1);
            uint64_t got = qtest_readq(dst, addr);

            if (got != want) {
                g_test_message("page at 0x%" PRIx64 ": 0x%" PRIx64
                               ", expected 0x%" PRIx64, addr, got, want);
            }
            g_assert_cmphex(got, ==, want);
        }
    }
}

/* Slow enough that the bulk stage is far below the areas. */
static void start_slow_migration(QTestState *src, QTestState *dst)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/fph-regions-%d.sock",
                                           g_get_tmp_dir(), getpid());

    fph_set_max_bandwidth(src, 64 * 1024);
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(src, uri, "{}");
}

static void finish_migration(QTestState *src, QTestState *dst)
{
    fph_set_max_bandwidth(src, 1ULL << 30);
    wait_for_migration_complete(src);
    qtest_qmp_eventwait(dst, "RESUME");
}

static void test_hints_in_region(const void *opaque)
{
    const RegionCase *c = opaque;
    QTestState *src = start_qemu(c, false);
    QTestState *dst;
    uint64_t areas[MAX_AREAS];
    size_t i, n = area_count(c);
    FphDriver g;
    uint32_t cmd_id;

    memcpy(areas, c->areas, sizeof(areas));
    if (c->dimm) {
        areas[0] += hotplug_dimm(src);
    }
    dst = start_qemu(c, true);

    fph_driver_init(&g, src, true);
    fill_areas(src, areas, n);
    fph_driver_post_slot(&g);

    start_slow_migration(src, dst);

    cmd_id = fph_driver_wait_request(&g);
    for (i = 0; i < n; i++) {
        fph_driver_report(&g, cmd_id, i == n - 1 ? FPB_CHUNK_F_LAST : 0,
                          areas[i], AREA_PAGES, FREE_FIRST, FREE_PAGES);
    }
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "answered"), ==, 1);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==,
                     n * FREE_PAGES);

    reuse_some_reported_pages(src, areas, n);
    finish_migration(src, dst);
    check_areas(dst, areas, n);

    qtest_quit(dst);
    qtest_quit(src);
}

/*
 * With x-ignore-shared, node 1 lives in a shared file that both sides
 * map and is not migrated: reports there are fine (guest RAM) but clear
 * nothing, and the destination sees the source's data there, reported
 * free or not.  Node 0 migrates as usual.
 */
static void test_ignore_shared(void)
{
    g_autofree char *file = g_strdup_printf("%s/fph-regions-shm-%d",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *args = g_strdup_printf(
        "-object memory-backend-ram,id=m0,size=128M "
        "-object memory-backend-file,id=m1,size=128M,mem-path=%s,share=on "
        "-numa node,nodeid=0,memdev=m0 -numa node,nodeid=1,memdev=m1",
        file);
    RegionCase c = { .name = "ignore-shared", .ram_args = args };
    const uint64_t migrating[] = { 64 * MiB }, shared[] = { 192 * MiB };
    QTestState *src = start_qemu(&c, false);
    QTestState *dst = start_qemu(&c, true);
    FphDriver g;
    uint32_t cmd_id;
    size_t page;

    fph_set_capability(src, "x-ignore-shared");
    fph_set_capability(dst, "x-ignore-shared");
    fph_driver_init(&g, src, true);
    fill_areas(src, migrating, 1);
    fill_areas(src, shared, 1);
    fph_driver_post_slot(&g);

    start_slow_migration(src, dst);
    cmd_id = fph_driver_wait_request(&g);
    fph_driver_report(&g, cmd_id, 0, shared[0], AREA_PAGES, FREE_FIRST,
                      FREE_PAGES);
    fph_driver_report(&g, cmd_id, FPB_CHUNK_F_LAST, migrating[0],
                      AREA_PAGES, FREE_FIRST, FREE_PAGES);
    g_assert_cmpuint(fph_balloon_counter(src, "bad-input"), ==, 0);
    g_assert_cmpuint(fph_balloon_counter(src, "pages-skipped"), ==,
                     FREE_PAGES);

    reuse_some_reported_pages(src, migrating, 1);
    reuse_some_reported_pages(src, shared, 1);
    finish_migration(src, dst);
    check_areas(dst, migrating, 1);
    for (page = 0; page < AREA_PAGES; page++) {
        uint64_t addr = shared[0] + page * PAGE;

        g_assert_cmphex(qtest_readq(dst, addr), ==,
                        data_value(addr, is_reused(page) ? 2 : 1));
    }

    qtest_quit(dst);
    qtest_quit(src);
    unlink(file);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(region_cases); i++) {
        g_autofree char *path = g_strdup_printf("/fph-ram-regions/%s",
                                                region_cases[i].name);

        qtest_add_data_func(path, &region_cases[i], test_hints_in_region);
    }
    qtest_add_func("/fph-ram-regions/ignore-shared", test_ignore_shared);
    return g_test_run();
}
