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
 * between the request and its answer are lost.
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

/*
 * The boot sector at 0x7c00 enters 32-bit protected mode with flat
 * segments (as tests/migration/i386/a-b-bootblock.S) and then, with
 * interrupts off:
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
#define RANGE_END       (RANGE_START + RANGE_PAGES * PAGE)

static const uint8_t boot_code[] = {
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
    /* xor %edx, %edx; round: inc %edx; mov %edx, COUNTER_ADDR */
    0x31, 0xd2,
    0x42,
    0x89, 0x15,
        B(COUNTER_ADDR, 0), B(COUNTER_ADDR, 1),
        B(COUNTER_ADDR, 2), B(COUNTER_ADDR, 3),
    /* mov $RANGE_START, %eax; page: mov %edx, (%eax) */
    0xb8,
        B(RANGE_START, 0), B(RANGE_START, 1),
        B(RANGE_START, 2), B(RANGE_START, 3),
    0x89, 0x10,
    /* mov $SPIN, %ecx; spin: dec %ecx; jnz spin */
    0xb9,
        B(SPIN, 0), B(SPIN, 1), B(SPIN, 2), B(SPIN, 3),
    0x49,
    0x75, 0xfd,
    /* add $PAGE, %eax; cmp $RANGE_END, %eax; jb page; jmp round */
    0x05,
        B(PAGE, 0), B(PAGE, 1), B(PAGE, 2), B(PAGE, 3),
    0x3d,
        B(RANGE_END, 0), B(RANGE_END, 1),
        B(RANGE_END, 2), B(RANGE_END, 3),
    0x72, 0xea,
    0xeb, 0xdc,
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

static char *make_boot_sector(void)
{
    g_autofree uint8_t *sector = g_malloc0(512);
    char *path = g_strdup_printf("%s/fph-kvm-dirty-%d.img", g_get_tmp_dir(),
                                 getpid());

    QEMU_BUILD_BUG_ON(sizeof(boot_code) > 0x50);
    memcpy(sector, boot_code, sizeof(boot_code));
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
static char *kvm_unusable(const KvmCase *c, const char *boot)
{
    QTestState *qts;
    QDict *rsp;
    char *why = NULL;

    if (access("/dev/kvm", R_OK | W_OK)) {
        return g_strdup_printf("/dev/kvm: %s", strerror(errno));
    }
    qts = start_guest(c, boot, "");
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

/* Stock driver: start the hinting of @id, hint the whole range free. */
static void stock_report(FphDriver *g, uint32_t id)
{
    QTestState *qts = g->qts;
    uint64_t id_addr = guest_alloc(&g->alloc, sizeof(id));
    uint32_t head;

    qtest_writel(qts, id_addr, id);
    head = qvirtqueue_add(qts, g->hint_vq, id_addr, sizeof(id), false,
                          false);
    qvirtqueue_kick(qts, &g->dev->vdev, g->hint_vq, head);
    fph_driver_wait_used(g, g->hint_vq, head, NULL);
    head = qvirtqueue_add(qts, g->hint_vq, RANGE_START,
                          RANGE_PAGES * PAGE, true, false);
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
        stock_report(g, id);
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

static void test_writes_after_report(const void *opaque)
{
    const KvmCase *c = opaque;
    g_autofree char *boot = make_boot_sector();
    g_autofree char *uri = g_strdup_printf("unix:%s/fph-kvm-dirty-%d.sock",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *why = kvm_unusable(c, boot);
    QTestState *src, *dst;
    FphDriver g;
    uint32_t id = 0;
    gint64 deadline;
    QDict *rsp;
    int i;

    if (why) {
        g_test_skip(why);
        unlink(boot);
        return;
    }
    src = start_guest(c, boot, "");
    /* -S: the destination stays paused, so both sides hold still. */
    dst = start_guest(c, boot, "-S -incoming defer");
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
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(src, uri, "{}");
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
    qtest_quit(dst);
    qtest_quit(src);
    unlink(boot);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/fph-kvm-dirty/writes-after-report/%s", cases[i].name);

        qtest_add_data_func(path, &cases[i], test_writes_after_report);
    }
    return g_test_run();
}
