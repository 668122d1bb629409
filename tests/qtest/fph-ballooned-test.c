/*
 * qemu-fph: pages in the balloon, across real migrations, with the test
 * as the guest's balloon driver (the stock protocol).  Ballooned pages
 * are neither read nor sent, the count is exact, the destination leaves
 * them unbacked and knows them; pages taken back and written arrive, page
 * by page; a ballooned page the guest wrote or read anyway is sent; reset
 * empties the bitmap; a second migration skips the same pages; the stream
 * carries nothing new with the bitmap off or the balloon empty; multifd
 * and postcopy keep working.  Then pages the host shows empty without a
 * balloon: never touched, or given back by free page reporting.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include "libqtest.h"
#include "qapi/qmp/qdict.h"
#include "libqos/fph-driver.h"
#include "migration-helpers.h"

#define PAGE            4096ULL
#define MiB             ((uint64_t)1 << 20)
#define RAM_MIB         256

/*
 * The guest's data: 16 MiB at 64 MiB, one value per page.  Into the
 * balloon go a run of RUN_PAGES and every SCATTER_STRIDE-th page after it,
 * as a buddy allocator's blocks and leftovers would.
 */
#define DATA_GPA        (64 * MiB)
#define DATA_PAGES      4096
#define RUN_FIRST       512
#define RUN_PAGES       1024
#define SCATTER_FIRST   2048
#define SCATTER_STRIDE  4
#define SCATTER_PAGES   ((DATA_PAGES - SCATTER_FIRST) / SCATTER_STRIDE)
#define BALLOONED       (RUN_PAGES + SCATTER_PAGES)

typedef struct Guest {
    char *dir;                  /* this test's own folder */
    QTestState *src;
    QTestState *dst;
    FphDriver drv;
} Guest;

static uint64_t data_value(uint64_t addr, uint64_t generation)
{
    return 0x5a5a000000000000ULL | (generation << 40) | (addr / PAGE);
}

static bool is_ballooned(size_t page)
{
    return (page >= RUN_FIRST && page < RUN_FIRST + RUN_PAGES) ||
           (page >= SCATTER_FIRST &&
            (page - SCATTER_FIRST) % SCATTER_STRIDE == 0);
}

static uint64_t page_gpa(size_t page)
{
    return DATA_GPA + page * PAGE;
}

/*
 * Both sides name their RAM m0, so a source on anonymous memory migrates
 * to a destination on a file, whose holes the test can see.
 */
static QTestState *start_qemu(Guest *g, const char *name, const char *ram,
                              const char *device_args, bool incoming)
{
    g_autofree char *ram_args = NULL;

    /* pc-q35-7.2: the newest machine type Debian's QEMU 7.2 knows */
    if (!strcmp(ram, "file")) {
        ram_args = g_strdup_printf("-object memory-backend-file,id=m0,"
                                   "size=%dM,mem-path=%s/%s-ram,share=on",
                                   RAM_MIB, g->dir, name);
    } else {
        ram_args = g_strdup_printf("-object memory-backend-%s,id=m0,"
                                   "size=%dM", ram, RAM_MIB);
    }
    return qtest_initf("-M pc-q35-7.2 -m %dM %s -machine memory-backend=m0 "
                       "-device virtio-balloon-pci,id=balloon%s %s",
                       RAM_MIB, ram_args, device_args,
                       incoming ? "-incoming defer" : "");
}

static void guest_start(Guest *g, const char *src_ram, const char *src_dev)
{
    /*
     * RAM files on tmpfs, whose holes are the guest's pages: a disk file
     * system may cache a file in large folios, backing a page next to a
     * written one with zeros.
     */
    if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)) {
        g->dir = g_strdup("/dev/shm/fph-ballooned-XXXXXX");
        g_assert(g_mkdtemp(g->dir));
    } else {
        g->dir = g_dir_make_tmp("fph-ballooned-XXXXXX", NULL);
    }
    g_assert(g->dir);
    g->src = start_qemu(g, "src", src_ram, src_dev, false);
    g->dst = start_qemu(g, "dst", "file", src_dev, true);
    fph_driver_init(&g->drv, g->src, false);
}

static void guest_end(Guest *g)
{
    g_autofree char *src_ram = g_strdup_printf("%s/src-ram", g->dir);
    g_autofree char *dst_ram = g_strdup_printf("%s/dst-ram", g->dir);

    qtest_quit(g->dst);
    qtest_quit(g->src);
    unlink(src_ram);
    unlink(dst_ram);
    rmdir(g->dir);
    g_free(g->dir);
}

static void fill_data(QTestState *qts)
{
    size_t page;

    for (page = 0; page < DATA_PAGES; page++) {
        qtest_writeq(qts, page_gpa(page), data_value(page_gpa(page), 1));
    }
}

static void inflate_pattern(FphDriver *d)
{
    size_t page;

    fph_driver_balloon_pages(d, true, page_gpa(RUN_FIRST), RUN_PAGES);
    for (page = SCATTER_FIRST; page < DATA_PAGES; page += SCATTER_STRIDE) {
        fph_driver_balloon_pages(d, true, page_gpa(page), 1);
    }
}

static void start_migration(QTestState *from, QTestState *to,
                            const char *dir, uint64_t bandwidth)
{
    g_autofree char *uri = g_strdup_printf("unix:%s/migrate.sock", dir);

    fph_set_max_bandwidth(from, bandwidth);
    qtest_qmp_assert_success(to, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(from, uri, "{}");
}

static QDict *query_migrate(QTestState *qts);

/*
 * Polled often: the first answer that says "completed" already has the
 * total time (patch 0022; stock 7.2 could report 0 there).
 */
static void finish_migration(QTestState *from, QTestState *to)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    fph_set_max_bandwidth(from, 1ULL << 30);
    for (;;) {
        QDict *info = query_migrate(from);
        const char *status = qdict_get_str(info, "status");
        bool done = !strcmp(status, "completed");

        g_assert_cmpstr(status, !=, "failed");
        if (done) {
            g_assert_cmpint(qdict_get_int(info, "total-time"), >, 0);
        }
        qobject_unref(info);
        if (done) {
            break;
        }
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(1000);
    }
    qtest_qmp_eventwait(to, "RESUME");
}

static void migrate(QTestState *from, QTestState *to, const char *dir)
{
    start_migration(from, to, dir, 1ULL << 30);
    finish_migration(from, to);
}

static QDict *query_migrate(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *info = qdict_get_qdict(rsp, "return");

    qobject_ref(info);
    qobject_unref(rsp);
    return info;
}

/* A top-level counter of query-migrate, which must be there */
static uint64_t migrate_counter(QTestState *qts, const char *name)
{
    QDict *info = query_migrate(qts);
    uint64_t value;

    g_assert(qdict_haskey(info, name));
    value = qdict_get_int(info, name);
    qobject_unref(info);
    return value;
}

static uint64_t balloon_skipped(QTestState *qts)
{
    return migrate_counter(qts, "balloon-skipped-pages");
}

static uint64_t unbacked_skipped(QTestState *qts)
{
    return migrate_counter(qts, "unbacked-skipped-pages");
}

/* Pages the migration thread read: sent as data or found zero */
static uint64_t pages_read(QTestState *qts)
{
    QDict *info = query_migrate(qts);
    QDict *ram = qdict_get_qdict(info, "ram");
    uint64_t n = qdict_get_int(ram, "normal") +
                 qdict_get_int(ram, "duplicate");

    qobject_unref(info);
    return n;
}

static int64_t balloon_actual(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-balloon' }");
    int64_t actual = qdict_get_int(qdict_get_qdict(rsp, "return"),
                                   "actual");

    qobject_unref(rsp);
    return actual;
}

/* The guest tells the device how much it holds, as a driver does. */
static void set_actual(FphDriver *d, uint32_t pages)
{
    /* struct virtio_balloon_config: num_pages, then actual */
    uint64_t cfg = d->dev->bar.addr + d->dev->device_cfg_offset;

    qtest_writel(d->qts, cfg + 4, pages);
}

/* Is the page at @page of the data a hole of the destination's RAM file? */
static bool dst_page_is_hole(Guest *g, size_t page)
{
    g_autofree char *path = g_strdup_printf("%s/dst-ram", g->dir);
    int fd = open(path, O_RDONLY);
    off_t off = page_gpa(page), data;

    g_assert(fd >= 0);
    data = lseek(fd, off, SEEK_DATA);
    close(fd);
    return data < 0 || data >= off + (off_t)PAGE;
}

/*
 * On the destination, page by page: ballooned pages the guest left alone
 * were never written (holes, read as zero), all others hold their data.
 * @touched: ballooned pages the guest wrote, with value generation 2.
 * @read: a ballooned page it read, which came as a zero page, or -1.
 */
static void check_destination(Guest *g, const size_t *touched, size_t n,
                              size_t read)
{
    size_t page, i;

    for (page = 0; page < DATA_PAGES; page++) {
        bool written = false;

        for (i = 0; i < n; i++) {
            written |= touched[i] == page;
        }
        if (is_ballooned(page) && !written && page != read) {
            g_assert_true(dst_page_is_hole(g, page));
        }
    }
    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t addr = page_gpa(page), want = data_value(addr, 1);

        for (i = 0; i < n; i++) {
            if (touched[i] == page) {
                want = data_value(addr, 2);
            }
        }
        if (is_ballooned(page) && want == data_value(addr, 1)) {
            want = 0;
        }
        g_assert_cmphex(qtest_readq(g->dst, addr), ==, want);
    }
}

typedef struct BackendCase {
    const char *name;
    const char *src_ram;        /* memory-backend-@src_ram, or "file" */
} BackendCase;

static const BackendCase backend_cases[] = {
    { "ram", "ram" },           /* anonymous: the page map tells */
    { "memfd", "memfd" },       /* shared: the file's holes tell */
    { "file", "file" },         /* a file in the test's folder */
};

static bool dir_is_tmpfs(const char *dir)
{
    struct statfs fs;

    return !statfs(dir, &fs) && fs.f_type == TMPFS_MAGIC;
}

/* Does the host back @page of the source's RAM, for a guest that read it? */
static bool src_read_page_has_data(Guest *g, const BackendCase *c,
                                   size_t page)
{
    g_autofree char *path = g_strdup_printf("%s/src-ram", g->dir);
    off_t off = page_gpa(page), data;
    int fd;

    if (strcmp(c->src_ram, "file")) {
        /*
         * Anonymous memory maps the zero page, memfd allocates a page:
         * both are data to the host.
         */
        return true;
    }
    /* A file system may keep a hole under a page only read */
    fd = open(path, O_RDONLY);
    g_assert(fd >= 0);
    data = lseek(fd, off, SEEK_DATA);
    close(fd);
    return data >= 0 && data < off + (off_t)PAGE;
}

/*
 * Inflate, then migrate.  Two ballooned pages are not skipped: one the
 * guest wrote without taking it out of the balloon first (allowed without
 * VIRTIO_BALLOON_F_MUST_TELL_HOST, until it does), and one it read, which
 * the host backs with its zero page.  Both arrive; every other ballooned
 * page is neither read nor sent, and stays a hole on the destination.
 */
static void test_inflate_migrate(const void *opaque)
{
    const BackendCase *c = opaque;
    const size_t written = RUN_FIRST + 7, read = SCATTER_FIRST + 8;
    g_autofree char *hmp = NULL, *expected = NULL;
    Guest g;
    uint64_t total_pages, skipped;
    QDict *info;

    guest_start(&g, c->src_ram, "");
    if (!strcmp(c->src_ram, "file") && !dir_is_tmpfs(g.dir)) {
        g_test_skip("no /dev/shm: migration looks at holes of tmpfs only");
        guest_end(&g);
        return;
    }
    fill_data(g.src);
    inflate_pattern(&g.drv);
    set_actual(&g.drv, BALLOONED);
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages"), ==,
                     BALLOONED);
    qtest_writeq(g.src, page_gpa(written), data_value(page_gpa(written), 2));
    g_assert_cmphex(qtest_readq(g.src, page_gpa(read)), ==, 0);
    skipped = BALLOONED - 1 - src_read_page_has_data(&g, c, read);

    migrate(g.src, g.dst, g.dir);

    g_assert_cmpuint(balloon_skipped(g.src), ==, skipped);
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages-skipped"), ==,
                     skipped);
    hmp = qtest_hmp(g.src, "info migrate");
    expected = g_strdup_printf("balloon skipped pages: %" PRIu64,
                               skipped);
    g_assert_nonnull(strstr(hmp, expected));
    g_assert(strchr("\r\n", strstr(hmp, expected)[strlen(expected)]));
    /* Nothing else skips: every other page was read once, at least */
    info = query_migrate(g.src);
    total_pages = qdict_get_int(qdict_get_qdict(info, "ram"), "total") /
                  PAGE;
    qobject_unref(info);
    /* Every other page was read once at least, or the host showed it empty */
    g_assert_cmpuint(pages_read(g.src) + unbacked_skipped(g.src), >=,
                     total_pages - skipped);

    check_destination(&g, &written, 1, read);
    g_assert_cmpuint(fph_balloon_get(g.dst, "ballooned-pages"), ==,
                     BALLOONED);
    g_assert_cmpint(balloon_actual(g.dst), ==, balloon_actual(g.src));
    g_assert_cmpint(balloon_actual(g.dst), ==,
                    (RAM_MIB * MiB) - BALLOONED * PAGE);
    guest_end(&g);
}

/*
 * The bulk stage skips the balloon; then, while the rest is still being
 * sent, the guest takes pages back and writes them: dirty logging brings
 * every one of them to the destination.
 */
static void test_deflate_write_migrate(void)
{
    const size_t back_first = RUN_FIRST + 256, back_pages = 128;
    size_t touched[128 + SCATTER_PAGES / 8], n = 0, page;
    Guest g;

    guest_start(&g, "ram", "");
    fill_data(g.src);
    inflate_pattern(&g.drv);

    start_migration(g.src, g.dst, g.dir, 64 * 1024);
    /* The bulk stage begins once set-up, which skipped the balloon, ends */
    wait_for_migration_status(g.src, "active", NULL);
    g_assert_cmpuint(balloon_skipped(g.src), ==, BALLOONED);

    fph_driver_balloon_pages(&g.drv, false, page_gpa(back_first),
                             back_pages);
    for (page = back_first; page < back_first + back_pages; page++) {
        touched[n++] = page;
    }
    for (page = SCATTER_FIRST; page < DATA_PAGES;
         page += 8 * SCATTER_STRIDE) {
        fph_driver_balloon_pages(&g.drv, false, page_gpa(page), 1);
        touched[n++] = page;
    }
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages"), ==,
                     BALLOONED - n);
    for (page = 0; page < n; page++) {
        qtest_writeq(g.src, page_gpa(touched[page]),
                     data_value(page_gpa(touched[page]), 2));
    }

    finish_migration(g.src, g.dst);
    check_destination(&g, touched, n, -1);
    g_assert_cmpuint(fph_balloon_get(g.dst, "ballooned-pages"), ==,
                     BALLOONED - n);
    guest_end(&g);
}

/* A reset gives the guest its memory back: nothing is skipped after it. */
static void test_reset(void)
{
    Guest g;

    guest_start(&g, "ram", "");
    fill_data(g.src);
    inflate_pattern(&g.drv);
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages"), ==,
                     BALLOONED);
    qtest_qmp_assert_success(g.src, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(g.src, "RESET");
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages"), ==, 0);

    migrate(g.src, g.dst, g.dir);
    g_assert_cmpuint(balloon_skipped(g.src), ==, 0);
    g_assert_cmpuint(fph_balloon_get(g.dst, "ballooned-pages"), ==, 0);
    guest_end(&g);
}

/*
 * The bitmap travels: the first destination never backs the ballooned
 * pages, and migrating on from it skips every one of them again.
 */
static void test_second_migration(void)
{
    g_autofree char *dir2 = NULL;
    QTestState *third;
    Guest g;
    size_t page;

    guest_start(&g, "ram", "");
    fill_data(g.src);
    inflate_pattern(&g.drv);
    migrate(g.src, g.dst, g.dir);
    g_assert_cmpuint(balloon_skipped(g.src), ==, BALLOONED);

    dir2 = g_strdup_printf("%s/second", g.dir);
    g_assert_cmpint(mkdir(dir2, 0700), ==, 0);
    third = qtest_initf("-M q35 -m %dM -object memory-backend-ram,id=m0,"
                        "size=%dM -machine memory-backend=m0 "
                        "-device virtio-balloon-pci,id=balloon "
                        "-incoming defer", RAM_MIB, RAM_MIB);
    migrate(g.dst, third, dir2);
    g_assert_cmpuint(balloon_skipped(g.dst), ==, BALLOONED);
    g_assert_cmpuint(fph_balloon_get(third, "ballooned-pages"), ==,
                     BALLOONED);
    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t addr = page_gpa(page);

        g_assert_cmphex(qtest_readq(third, addr), ==,
                        is_ballooned(page) ? 0 : data_value(addr, 1));
    }
    qtest_quit(third);
    rmdir(dir2);
    guest_end(&g);
}

/* How many times @needle occurs in the file at @path */
static size_t count_in_file(const char *path, const char *needle)
{
    g_autofree char *buf = NULL;
    gsize len, n = 0;
    const char *p;

    g_assert(g_file_get_contents(path, &buf, &len, NULL));
    /* The stream is binary: memmem, not a string search */
    for (p = buf; (p = memmem(p, len - (p - buf), needle, strlen(needle)));
         p++) {
        n++;
    }
    return n;
}

/* Migrate to a file; returns how often the subsection's name is in it */
static size_t subsection_in_stream(QTestState *qts, const char *dir)
{
    g_autofree char *file = g_strdup_printf("%s/stream", dir);
    /* The file appears once cat wrote all of it */
    g_autofree char *uri = g_strdup_printf("exec:cat > %s.part && "
                                           "mv %s.part %s", file, file,
                                           file);
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    size_t n;

    migrate_qmp(qts, uri, "{}");
    wait_for_migration_complete(qts);
    while (!g_file_test(file, G_FILE_TEST_EXISTS)) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
    n = count_in_file(file, "virtio-balloon-device/ballooned-pages");
    unlink(file);
    return n;
}

/*
 * What a stock QEMU 7.2 loads: no subsection with the bitmap off, or
 * with nothing in the balloon; the subsection once pages are in it.
 */
static void test_stream(void)
{
    Guest g;
    QDict *info;

    guest_start(&g, "ram", ",ballooned-page-bitmap=off");
    inflate_pattern(&g.drv);
    g_assert_cmpuint(fph_balloon_get(g.src, "ballooned-pages"), ==, 0);
    g_assert_cmpuint(subsection_in_stream(g.src, g.dir), ==, 0);
    info = query_migrate(g.src);
    g_assert_false(qdict_haskey(info, "balloon-skipped-pages"));
    qobject_unref(info);
    guest_end(&g);

    guest_start(&g, "ram", "");
    g_assert_cmpuint(subsection_in_stream(g.src, g.dir), ==, 0);
    g_assert_cmpuint(balloon_skipped(g.src), ==, 0);
    guest_end(&g);

    guest_start(&g, "ram", "");
    inflate_pattern(&g.drv);
    g_assert_cmpuint(subsection_in_stream(g.src, g.dir), ==, 1);
    g_assert_cmpuint(balloon_skipped(g.src), ==, BALLOONED);
    guest_end(&g);
}

/* The machine types of QEMU 7.1 and older: the stock device */
static void test_old_machine_type(void)
{
    QTestState *qts = qtest_init("-M pc-q35-7.1 -m 256M "
                                 "-device virtio-balloon-pci,id=balloon");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': %s } }",
                           "/machine/peripheral/balloon/virtio-backend",
                           "ballooned-page-bitmap");

    g_assert_false(qdict_get_bool(rsp, "return"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/*
 * Pages the host shows empty, ballooned or not: never touched, or given
 * back by free page reporting.  Migration skips them without reading
 * them; a page written right before the migration and one written while
 * it runs both arrive.  With skip-unbacked-pages off, every page is read.
 */
#define UNTOUCHED_GPA   (128 * MiB)
#define UNTOUCHED_PAGES 4096
#define REPORTED_FIRST  1024
#define REPORTED_PAGES  512

typedef struct UnbackedCase {
    const char *ram;            /* the source's memory-backend-@ram */
    bool skip;                  /* skip-unbacked-pages */
} UnbackedCase;

static const UnbackedCase unbacked_cases[] = {
    { "ram", true },            /* the page map tells */
    { "memfd", true },          /* the holes of the memfd tell */
    { "ram", false },
};

static void test_unbacked(const void *opaque)
{
    const UnbackedCase *c = opaque;
    bool skip = c->skip;
    const uint64_t before = UNTOUCHED_GPA + 17 * PAGE;
    const uint64_t during = UNTOUCHED_GPA + 33 * PAGE;
    uint64_t total_pages, page;
    Guest g;
    QDict *info;

    guest_start(&g, c->ram, ",free-page-reporting=on");
    if (!skip) {
        qtest_qmp_assert_success(g.src, "{ 'execute': "
                                 "'migrate-set-parameters', 'arguments': "
                                 "{ 'skip-unbacked-pages': false } }");
    }
    fill_data(g.src);
    fph_driver_report_free(&g.drv, page_gpa(REPORTED_FIRST),
                           REPORTED_PAGES * PAGE);
    qtest_writeq(g.src, before, data_value(before, 1));

    start_migration(g.src, g.dst, g.dir, 64 * 1024);
    wait_for_migration_status(g.src, "active", NULL);
    qtest_writeq(g.src, during, data_value(during, 2));
    finish_migration(g.src, g.dst);

    info = query_migrate(g.src);
    total_pages = qdict_get_int(qdict_get_qdict(info, "ram"), "total") /
                  PAGE;
    g_assert_cmpint(qdict_haskey(info, "unbacked-skipped-pages"), ==, skip);
    qobject_unref(info);
    if (skip) {
        /* At least the untouched area and the reported pages, less two */
        g_assert_cmpuint(unbacked_skipped(g.src), >=,
                         UNTOUCHED_PAGES - 2 + REPORTED_PAGES);
        g_assert_cmpuint(pages_read(g.src) + unbacked_skipped(g.src), >=,
                         total_pages);
        g_assert_cmpuint(pages_read(g.src), <,
                         total_pages - UNTOUCHED_PAGES - REPORTED_PAGES + 2);
    } else {
        g_assert_cmpuint(pages_read(g.src), >=, total_pages);
    }

    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t addr = page_gpa(page);
        bool reported = page >= REPORTED_FIRST &&
                        page < REPORTED_FIRST + REPORTED_PAGES;

        g_assert_cmphex(qtest_readq(g.dst, addr), ==,
                        reported ? 0 : data_value(addr, 1));
    }
    for (page = 0; page < UNTOUCHED_PAGES; page++) {
        uint64_t addr = UNTOUCHED_GPA + page * PAGE;
        uint64_t want = addr == before ? data_value(addr, 1) :
                        addr == during ? data_value(addr, 2) : 0;

        g_assert_cmphex(qtest_readq(g.dst, addr), ==, want);
    }
    guest_end(&g);
}

/* Multifd channels send what the bitmap leaves, and nothing more. */
static void test_multifd(void)
{
    Guest g;

    guest_start(&g, "ram", "");
    fph_set_capability(g.src, "multifd");
    fph_set_capability(g.dst, "multifd");
    fill_data(g.src);
    inflate_pattern(&g.drv);
    migrate(g.src, g.dst, g.dir);
    g_assert_cmpuint(balloon_skipped(g.src), ==, BALLOONED);
    check_destination(&g, NULL, 0, -1);
    guest_end(&g);
}

/*
 * Postcopy: a skipped page would leave a destination fault waiting, so
 * nothing is skipped and the ballooned pages come as zero pages, as in
 * stock QEMU.  Data written during postcopy arrives.
 */
static void test_postcopy(void)
{
    Guest g;
    size_t page;
    int ufd = syscall(__NR_userfaultfd, O_CLOEXEC);

    if (ufd < 0) {
        g_test_skip("postcopy needs userfaultfd, which this host refuses");
        return;
    }
    close(ufd);
    guest_start(&g, "ram", "");
    fph_set_capability(g.src, "postcopy-ram");
    fph_set_capability(g.dst, "postcopy-ram");
    fill_data(g.src);
    inflate_pattern(&g.drv);

    start_migration(g.src, g.dst, g.dir, 64 * 1024);
    qtest_qmp_assert_success(g.src, "{ 'execute': "
                             "'migrate-start-postcopy' }");
    wait_for_migration_status(g.src, "postcopy-active", NULL);
    finish_migration(g.src, g.dst);

    g_assert_cmpuint(balloon_skipped(g.src), ==, 0);
    for (page = 0; page < DATA_PAGES; page++) {
        uint64_t addr = page_gpa(page);

        g_assert_cmphex(qtest_readq(g.dst, addr), ==,
                        is_ballooned(page) ? 0 : data_value(addr, 1));
    }
    guest_end(&g);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(backend_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/fph-ballooned/inflate-migrate/%s", backend_cases[i].name);

        qtest_add_data_func(path, &backend_cases[i], test_inflate_migrate);
    }
    qtest_add_func("/fph-ballooned/deflate-write-migrate",
                   test_deflate_write_migrate);
    qtest_add_func("/fph-ballooned/reset", test_reset);
    qtest_add_func("/fph-ballooned/second-migration", test_second_migration);
    qtest_add_func("/fph-ballooned/stream", test_stream);
    qtest_add_func("/fph-ballooned/old-machine-type", test_old_machine_type);
    qtest_add_func("/fph-ballooned/multifd", test_multifd);
    for (i = 0; i < G_N_ELEMENTS(unbacked_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/fph-ballooned/unbacked/%s-%s", unbacked_cases[i].ram,
            unbacked_cases[i].skip ? "skipped" : "off");

        qtest_add_data_func(path, &unbacked_cases[i], test_unbacked);
    }
    qtest_add_func("/fph-ballooned/postcopy", test_postcopy);
    return g_test_run();
}
