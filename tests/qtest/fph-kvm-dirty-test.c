/*
 * qemu-fph: under KVM, a guest write to a page after the guest reported
 * it free reaches the destination, in every dirty-tracking mode.
 *
 * A boot sector keeps writing its round number into every page of a
 * range.  The test, as the guest's balloon driver, answers every request
 * by reporting the whole range free (as a buggy or hostile guest would),
 * but only after the guest has rewritten every page since the request.
 * Those writes must all be migrated: on the destination each page holds
 * the round of the source's last writes.  With KVM's manually protected
 * dirty log, a page found dirty at a sync stays writable and its writes
 * unlogged until its chunk of the log is cleared; qemu-fph clears every
 * chunk before it asks the guest.  Without that, the writes the guest made
 * between the request and its answer are lost, unless the guest happens to
 * write the pages again: the write-once-after-request cases have a guest
 * that writes the range once after the request and then only reads, so
 * they fail every time without it (make prove-rearm).
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "migration-helpers.h"
#include "qapi/qmp/qdict.h"
#include "libqos/fph-driver.h"
#include "standard-headers/linux/virtio_balloon.h"
#include "hw/virtio/free-page-bitmap.h"

#define PAGE            4096
#define COUNTER_ADDR    0x9000
/* The command word of the guest that writes on command, and its answer */
#define COMMAND_ADDR    0x9000
#define DONE_ADDR       0x9004
/*
 * Migration clears KVM's dirty log in 1 GiB chunks, just before it sends a
 * page of the chunk.  The range sits in the second GiB, so that the pages
 * migration sends from the first (the driver's queues, the counter) do not
 * re-arm it: as in a big guest, where migration is busy elsewhere.
 */
#define GUEST_MEM       "1280M"
#define RANGE_START     0x41000000u
#define RANGE_PAGES     1024
/*
 * Spin between two pages, so that one round takes a while (about 0.15 s
 * on the nested KVM here): long enough that most of the range is not
 * written again between the last answer and the end of the migration.
 */
#define SPIN            100u
/* Rounds answered while the migration throttles, after its first pass */
#define SLOW_ROUNDS     4
#define TIMEOUT_US      (60 * G_USEC_PER_SEC)

/* Little-endian bytes of a 32-bit immediate */
#define B(x, n)         (((x) >> (8 * (n))) & 0xff)

#define RANGE_END       (RANGE_START + RANGE_PAGES * PAGE)

/*
 * The boot sector at 0x7c00 enters 32-bit protected mode with flat
 * segments (as tests/migration/i386/a-b-bootblock.S) and runs one of the
 * programs below with interrupts off.
 */
static const uint8_t boot_enter_pm[] = {
    /* cli; lgdtl 0x7c68; mov $1, %eax; mov %eax, %cr0 */
    0xfa,
    0x66, 0x0f, 0x01, 0x16, 0x68, 0x7c,
    0x66, 0xb8, 0x01, 0x00, 0x00, 0x00,
    0x0f, 0x22, 0xc0,
    /* ljmpl $8, $0x7c18: 32-bit code from here */
    0x66, 0xea, 0x18, 0x7c, 0x00, 0x00, 0x08, 0x00,
    /* mov $16, %eax; mov %eax, %ds; A20 on through port 0x92 */
    0xb8, 0x10, 0x00, 0x00, 0x00,
    0x8e, 0xd8,
    0xe4, 0x92, 0x0c, 0x02, 0xe6, 0x92,
};

/*
 * Write the round number into every page, round after round:
 *
 *         xor  %edx, %edx
 * round:  inc  %edx
 *         mov  %edx, COUNTER_ADDR
 *         mov  $RANGE_START, %eax
 * page:   mov  %edx, (%eax)
 *         mov  $SPIN, %ecx
 * spin:   dec  %ecx
 *         jnz  spin
 *         add  $4096, %eax
 *         cmp  $RANGE_END, %eax
 *         jb   page
 *         jmp  round
 */
static const uint8_t write_rounds[] = {
    0x31, 0xd2,
    0x42,
    0x89, 0x15,
        B(COUNTER_ADDR, 0), B(COUNTER_ADDR, 1),
        B(COUNTER_ADDR, 2), B(COUNTER_ADDR, 3),
    0xb8,
        B(RANGE_START, 0), B(RANGE_START, 1),
        B(RANGE_START, 2), B(RANGE_START, 3),
    0x89, 0x10,
    0xb9, B(SPIN, 0), B(SPIN, 1), B(SPIN, 2), B(SPIN, 3),
    0x49,
    0x75, 0xfd,
    0x05, B(PAGE, 0), B(PAGE, 1), B(PAGE, 2), B(PAGE, 3),
    0x3d, B(RANGE_END, 0), B(RANGE_END, 1), B(RANGE_END, 2), B(RANGE_END, 3),
    0x72, 0xea,
    0xeb, 0xdc,
};

/*
 * Write the test's command word into every page once, each time it
 * changes, then acknowledge it; in between, only read:
 *
 * wait:   mov  COMMAND_ADDR, %edx
 *         cmp  DONE_ADDR, %edx
 *         je   wait
 *         mov  $RANGE_START, %eax
 * page:   mov  %edx, (%eax)
 *         add  $4096, %eax
 *         cmp  $RANGE_END, %eax
 *         jb   page
 *         mov  %edx, DONE_ADDR
 *         jmp  wait
 */
static const uint8_t write_on_command[] = {
    0x8b, 0x15,
        B(COMMAND_ADDR, 0), B(COMMAND_ADDR, 1),
        B(COMMAND_ADDR, 2), B(COMMAND_ADDR, 3),
    0x3b, 0x15,
        B(DONE_ADDR, 0), B(DONE_ADDR, 1),
        B(DONE_ADDR, 2), B(DONE_ADDR, 3),
    0x74, 0xf2,
    0xb8,
        B(RANGE_START, 0), B(RANGE_START, 1),
        B(RANGE_START, 2), B(RANGE_START, 3),
    0x89, 0x10,
    0x05, B(PAGE, 0), B(PAGE, 1), B(PAGE, 2), B(PAGE, 3),
    0x3d, B(RANGE_END, 0), B(RANGE_END, 1), B(RANGE_END, 2), B(RANGE_END, 3),
    0x72, 0xf2,
    0x89, 0x15,
        B(DONE_ADDR, 0), B(DONE_ADDR, 1),
        B(DONE_ADDR, 2), B(DONE_ADDR, 3),
    0xeb, 0xd7,
};

/* At 0x7c50: null, flat code and flat data descriptors; at 0x7c68 GDTR */
static const uint8_t boot_gdt[] = {
    0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0,
    0xff, 0xff, 0, 0, 0, 0x92, 0xcf, 0,
    23, 0, 0x50, 0x7c, 0x00, 0x00,
};

typedef struct KvmCase {
    const char *name;
    const char *accel;          /* -accel argument */
    bool stock;                 /* stock hinting instead of bitmaps */
} KvmCase;

#define RING "kvm,dirty-ring-size=4096"

static const KvmCase cases[] = {
    { "bitmap/dirty-log", "kvm", false },
    { "bitmap/dirty-ring", RING, false },
    { "stock/dirty-log", "kvm", true },
    { "stock/dirty-ring", RING, true },
};

static char *make_boot_sector(const char *name, const uint8_t *program,
                              size_t len)
{
    g_autofree uint8_t *sector = g_malloc0(512);
    char *path = g_strdup_printf("%s/fph-kvm-dirty-%d-%s.img",
                                 g_get_tmp_dir(), getpid(), name);

    /* The GDT follows at 0x7c50. */
    g_assert_cmpuint(sizeof(boot_enter_pm) + len, <=, 0x50);
    memcpy(sector, boot_enter_pm, sizeof(boot_enter_pm));
    memcpy(sector + sizeof(boot_enter_pm), program, len);
    memcpy(sector + 0x50, boot_gdt, sizeof(boot_gdt));
    sector[510] = 0x55;
    sector[511] = 0xaa;
    g_assert(g_file_set_contents(path, (char *)sector, 512, NULL));
    return path;
}

static QTestState *start_guest(const KvmCase *c, const char *boot,
                               const char *extra)
{
    return qtest_initf("-accel %s -M pc -m " GUEST_MEM " "
                       "-drive file=%s,format=raw "
                       "-device virtio-balloon-pci,id=balloon,"
                       "free-page-hint=on %s", c->accel, boot, extra);
}

static uint32_t guest_round(QTestState *qts)
{
    return qtest_readl(qts, COUNTER_ADDR);
}

/* Wait until the guest starts round @round; false after @timeout_us. */
static bool wait_for_round(QTestState *qts, uint32_t round,
                           gint64 timeout_us)
{
    gint64 deadline = g_get_monotonic_time() + timeout_us;

    while (guest_round(qts) < round) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(1000);
    }
    return true;
}

/*
 * Why the case cannot run here, or NULL.  libqtest adds "-accel qtest",
 * which QEMU takes when KVM fails: ask QEMU what it runs, and whether the
 * guest gets anywhere.
 */
static char *kvm_unusable(const KvmCase *c)
{
    g_autofree char *boot = NULL;
    QTestState *qts;
    QDict *rsp;
    char *why = NULL;

    if (access("/dev/kvm", R_OK | W_OK)) {
        return g_strdup_printf("/dev/kvm: %s", strerror(errno));
    }
    boot = make_boot_sector("probe", write_rounds, sizeof(write_rounds));
    qts = start_guest(c, boot, "");
    /* Open, and no migration reopens it by name: gone even on failure */
    unlink(boot);
    rsp = qtest_qmp(qts, "{ 'execute': 'query-kvm' }");
    if (!qdict_get_bool(qdict_get_qdict(rsp, "return"), "enabled")) {
        why = g_strdup("QEMU cannot use KVM here");
    } else if (!wait_for_round(qts, 2, 30 * G_USEC_PER_SEC)) {
        why = g_strdup("the boot sector does not run under KVM here");
    } else if (strstr(c->accel, "dirty-ring")) {
        /* QEMU falls back to the dirty bitmap when KVM has no ring. */
        QDict *r = qtest_qmp(qts, "{ 'execute': 'calc-dirty-rate',"
                             "'arguments': { 'calc-time': 1,"
                             "'mode': 'dirty-ring' } }");

        if (qdict_haskey(r, "error")) {
            why = g_strdup_printf("no KVM dirty ring: %s",
                                  qdict_get_str(qdict_get_qdict(r, "error"),
                                                "desc"));
        }
        qobject_unref(r);
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    return why;
}

static int64_t sync_count(QTestState *qts)
{
    QDict *rsp = migrate_query(qts);
    int64_t n = 0;

    g_assert(strcmp(qdict_get_str(rsp, "status"), "failed"));
    if (qdict_haskey(rsp, "ram")) {
        n = qdict_get_int(qdict_get_qdict(rsp, "ram"), "dirty-sync-count");
    }
    qobject_unref(rsp);
    return n;
}

static void set_parameter(QTestState *qts, const char *name, int64_t value)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { %s: %" PRId64 " } }",
                             name, value);
}

/* The next stock free page hint request: a new command id in the config. */
static uint32_t stock_wait_request(FphDriver *g, uint32_t last)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;
    uint32_t id;

    for (;;) {
        id = qvirtio_config_readl(&g->dev->vdev, 8);
        if (id >= VIRTIO_BALLOON_CMD_ID_DONE + 1 && id != last) {
            return id;
        }
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(1000);
    }
}

/* Stock driver: start the hinting of @id, hint @pages of the range free. */
static void stock_report(FphDriver *g, uint32_t id, uint32_t pages)
{
    QTestState *qts = g->qts;
    uint64_t id_addr = guest_alloc(&g->alloc, sizeof(id));
    uint32_t head;

    qtest_writel(qts, id_addr, id);
    head = qvirtqueue_add(qts, g->hint_vq, id_addr, sizeof(id), false,
                          false);
    qvirtqueue_kick(qts, &g->dev->vdev, g->hint_vq, head);
    fph_driver_wait_used(g, g->hint_vq, head, NULL);
    head = qvirtqueue_add(qts, g->hint_vq, RANGE_START, pages * PAGE, true,
                          false);
    qvirtqueue_kick(qts, &g->dev->vdev, g->hint_vq, head);
    fph_driver_wait_used(g, g->hint_vq, head, NULL);
    guest_free(&g->alloc, id_addr);
}

/*
 * One request and its answer: the whole range free, sent once the guest
 * has written every page of it after the request.
 */
static uint32_t answer_request(const KvmCase *c, FphDriver *g, uint32_t last)
{
    uint32_t id, round;

    if (c->stock) {
        id = stock_wait_request(g, last);
    } else {
        fph_driver_post_slot(g);
        id = fph_driver_wait_request(g);
    }
    round = guest_round(g->qts);
    g_assert(wait_for_round(g->qts, round + 2, TIMEOUT_US));
    if (c->stock) {
        stock_report(g, id, RANGE_PAGES);
    } else {
        fph_driver_report(g, id, FPB_CHUNK_F_LAST, RANGE_START, RANGE_PAGES,
                          0, RANGE_PAGES);
    }
    return id;
}

/*
 * Page by page: the destination has what the source has, which is the
 * round the source was in or the one before.
 */
static void check_destination(QTestState *src, QTestState *dst)
{
    uint32_t last = guest_round(src);
    uint32_t older = 0, differ = 0, oldest = last;
    uint32_t page;

    for (page = 0; page < RANGE_PAGES; page++) {
        uint64_t addr = RANGE_START + (uint64_t)page * PAGE;
        uint32_t on_src = qtest_readl(src, addr);
        uint32_t on_dst = qtest_readl(dst, addr);

        g_assert_cmpuint(on_src + 1, >=, last);
        g_assert_cmpuint(on_src, <=, last);
        differ += on_dst != on_src;
        if (on_dst + 1 < last) {
            older++;
            oldest = MIN(oldest, on_dst);
        }
    }
    g_test_message("source in round %u; destination: %u of %u pages "
                   "older than round %u (lowest value %u), %u differ from the "
                   "source", last, older, RANGE_PAGES, last - 1, oldest,
                   differ);
    g_assert_cmpuint(older, ==, 0);
    g_assert_cmpuint(differ, ==, 0);
}

/* A source running @program under KVM, and its destination waiting */
typedef struct KvmMigration {
    QTestState *src;
    QTestState *dst;
    char *boot;
    char *uri;
} KvmMigration;

/* Start both sides; false, with the test skipped, where KVM cannot run. */
static bool kvm_migration_start(KvmMigration *m, const KvmCase *c,
                                const char *name, const uint8_t *program,
                                size_t len)
{
    g_autofree char *why = kvm_unusable(c);

    if (why) {
        g_test_skip(why);
        return false;
    }
    m->boot = make_boot_sector(name, program, len);
    m->uri = g_strdup_printf("unix:%s/fph-kvm-dirty-%d.sock",
                             g_get_tmp_dir(), getpid());
    m->src = start_guest(c, m->boot, "");
    /* -S: the destination stays paused, so both sides hold still. */
    m->dst = start_guest(c, m->boot, "-S -incoming defer");
    qtest_qmp_assert_success(m->dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", m->uri);
    return true;
}

static void kvm_migration_end(KvmMigration *m)
{
    qtest_quit(m->dst);
    qtest_quit(m->src);
    unlink(m->boot);
    g_free(m->boot);
    g_free(m->uri);
}

static void test_writes_after_report(const void *opaque)
{
    const KvmCase *c = opaque;
    KvmMigration m;
    QTestState *src, *dst;
    FphDriver g;
    uint32_t id = 0;
    gint64 deadline;
    QDict *rsp;
    int i;

    if (!kvm_migration_start(&m, c, "rounds", write_rounds,
                             sizeof(write_rounds))) {
        return;
    }
    src = m.src;
    dst = m.dst;
    g_assert(wait_for_round(src, 2, TIMEOUT_US));
    fph_driver_init(&g, src, !c->stock);

    /*
     * A downtime limit the range can never meet keeps the migration
     * syncing and asking.  The first pass runs at 16 MiB/s (a threshold of
     * a few pages); then one page a tenth of a second, so that migration
     * leaves the range to the hints.
     */
    set_parameter(src, "downtime-limit", 1);
    fph_set_max_bandwidth(src, 16 * 1024 * 1024);
    migrate_qmp(src, m.uri, "{}");
    deadline = g_get_monotonic_time() + TIMEOUT_US;
    while (sync_count(src) < 2) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
    fph_set_max_bandwidth(src, 1024);
    for (i = 0; i < SLOW_ROUNDS; i++) {
        id = answer_request(c, &g, id);
    }
    set_parameter(src, "downtime-limit", 10000);
    fph_set_max_bandwidth(src, 1ULL << 30);
    wait_for_migration_complete(src);
    wait_for_migration_status(dst, "completed", NULL);

    if (!c->stock) {
        g_assert_cmpuint(fph_balloon_counter(src,
                                             "answered"),
                         >=, 1);
        g_test_message("%" PRIu64 " pages skipped",
                       fph_balloon_counter(src,
                                           "pages-skipped"));
    }
    rsp = migrate_query(src);
    g_test_message("%" PRId64 " pages sent",
                   qdict_get_int(qdict_get_qdict(rsp, "ram"), "normal"));
    qobject_unref(rsp);
    check_destination(src, dst);
    kvm_migration_end(&m);
}

/*
 * Have the guest that writes on command write @value into the range.  The
 * command is written again until done: the firmware clears low memory
 * before the boot sector runs.
 */
static void guest_write_range(QTestState *qts, uint32_t value)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_US;

    for (;;) {
        qtest_writel(qts, COMMAND_ADDR, value);
        if (qtest_readl(qts, DONE_ADDR) == value) {
            return;
        }
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(1000);
    }
}

static int64_t bytes_remaining(QTestState *qts)
{
    QDict *rsp = migrate_query(qts);
    int64_t n = qdict_get_int(qdict_get_qdict(rsp, "ram"), "remaining");

    qobject_unref(rsp);
    return n;
}

/*
 * The window the re-arm closes, deterministically: the guest writes the
 * range once after the request and then only reads; its answer reports
 * the range free, less its last page.  That page, in the same dirty log
 * chunk, is sent after the hints.  Without the re-arm the guest's writes
 * went unlogged (the first sync found the pages dirty and left them
 * writable), and clearing the chunk's log, to send that page (bitmaps) or
 * when stock QEMU applies the hint, forgets them: the hinted pages are
 * never sent and read zero on the destination.
 */
static void test_write_once_after_request(const void *opaque)
{
    const KvmCase *c = opaque;
    const uint32_t hinted = RANGE_PAGES - 1;
    uint32_t id, page, wrong = 0, lowest = UINT32_MAX;
    KvmMigration m;
    QTestState *src, *dst;
    int64_t before;
    FphDriver g;

    if (!kvm_migration_start(&m, c, "command", write_on_command,
                             sizeof(write_on_command))) {
        return;
    }
    src = m.src;
    dst = m.dst;
    guest_write_range(src, 1);
    fph_driver_init(&g, src, !c->stock);

    /* One page a tenth of a second: the first pass is far from the range. */
    fph_set_max_bandwidth(src, 1024);
    migrate_qmp(src, m.uri, "{}");
    if (c->stock) {
        id = stock_wait_request(&g, 0);
    } else {
        fph_driver_post_slot(&g);
        id = fph_driver_wait_request(&g);
    }
    guest_write_range(src, 2);

    before = bytes_remaining(src);
    if (c->stock) {
        stock_report(&g, id, hinted);
    } else {
        fph_driver_report(&g, id, FPB_CHUNK_F_LAST, RANGE_START, RANGE_PAGES,
                          0, hinted);
    }
    /* The hints took the pages out of the migration bitmap... */
    g_assert_cmpint(before - bytes_remaining(src), >=,
                    (int64_t)hinted * PAGE);
    /* ...before the first pass sent their neighbour. */
    g_assert_cmpuint(qtest_readl(dst, RANGE_END - PAGE), ==, 0);

    fph_set_max_bandwidth(src, 1ULL << 30);
    wait_for_migration_complete(src);
    wait_for_migration_status(dst, "completed", NULL);

    for (page = 0; page < RANGE_PAGES; page++) {
        uint64_t addr = RANGE_START + (uint64_t)page * PAGE;
        uint32_t on_dst = qtest_readl(dst, addr);

        g_assert_cmpuint(qtest_readl(src, addr), ==, 2);
        wrong += on_dst != 2;
        lowest = MIN(lowest, on_dst);
    }
    g_test_message("destination: %u of %u pages without the write made "
                   "after the request (lowest value %u)", wrong, RANGE_PAGES,
                   lowest);
    g_assert_cmpuint(wrong, ==, 0);
    kvm_migration_end(&m);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/fph-kvm-dirty/writes-after-report/%s", cases[i].name);

        g_autofree char *once = g_strdup_printf(
            "/fph-kvm-dirty/write-once-after-request/%s", cases[i].name);

        qtest_add_data_func(path, &cases[i], test_writes_after_report);
        qtest_add_data_func(once, &cases[i], test_write_once_after_request);
    }
    return g_test_run();
}
