/*
 * qemu-fph: TCG must log a vCPU's writes to a page after a dirty bitmap
 * sync cleared the page's dirty bit, also through a TLB entry that was
 * filled while the page was dirty.  Stock QEMU 7.2 does not: a guest that
 * keeps writing one page loses its later writes on the destination.
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

#define COUNTER_ADDR 0x9000

/*
 * A boot sector, in real mode with interrupts off, so nothing ever flushes
 * the vCPU's TLB.  The counter is on another page than the code: a page
 * with translated code is always written through the slow path.
 *     cli
 *     xor %ax, %ax
 *     mov %ax, %ds
 * 1:  incl 0x7000
 *     jmp 1b
 */
static const uint8_t boot_code[] = {
    0xfa,
    0x31, 0xc0,
    0x8e, 0xd8,
    0x66, 0xff, 0x06, 0x00, 0x90,
    0xeb, 0xf9,
};

static char *make_boot_sector(void)
{
    g_autofree uint8_t *sector = g_malloc0(512);
    char *path = g_strdup_printf("%s/fph-tcg-dirty-%d.img", g_get_tmp_dir(),
                                 getpid());

    memcpy(sector, boot_code, sizeof(boot_code));
    sector[510] = 0x55;
    sector[511] = 0xaa;
    g_assert(g_file_set_contents(path, (char *)sector, 512, NULL));
    return path;
}

static void wait_for_guest_writes(QTestState *qts)
{
    uint32_t first = qtest_readl(qts, COUNTER_ADDR);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    while (qtest_readl(qts, COUNTER_ADDR) == first) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
}

/* Wait for @syncs dirty bitmap syncs, or for the end of the migration. */
static void wait_for_syncs(QTestState *qts, int64_t syncs)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = migrate_query(qts);
        const char *status = qdict_get_str(rsp, "status");
        QDict *ram = qdict_haskey(rsp, "ram") ? qdict_get_qdict(rsp, "ram")
                                              : NULL;
        bool done = !strcmp(status, "completed") ||
                    (ram && qdict_get_int(ram, "dirty-sync-count") >= syncs);

        g_assert(strcmp(status, "failed"));
        qobject_unref(rsp);
        if (done) {
            return;
        }
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
}

static void test_hot_page_reaches_destination(void)
{
    g_autofree char *boot = make_boot_sector();
    g_autofree char *uri = g_strdup_printf("unix:%s/fph-tcg-dirty-%d.sock",
                                           g_get_tmp_dir(), getpid());
    const char *args = "-accel tcg -M pc -m 32M -drive file=%s,format=raw";
    g_autofree char *src_args = g_strdup_printf(args, boot);
    QTestState *src = qtest_init(src_args);
    /* -S: the destination stays paused, so both sides hold still. */
    QTestState *dst = qtest_initf("%s -S -incoming defer", src_args);
    uint32_t on_src, on_dst;

    wait_for_guest_writes(src);
    /*
     * Let the migration go through several syncs with the counter's page
     * sent between them: with a 1 ms downtime limit it cannot converge
     * while the page keeps getting dirty.  Stock 7.2 stops seeing the
     * page dirty after the first of them and completes, stale.
     */
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'downtime-limit': 1,"
                             "'max-bandwidth': 1000000 } }");
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming',"
                             "'arguments': { 'uri': %s } }", uri);
    migrate_qmp(src, uri, "{}");
    wait_for_syncs(src, 6);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'downtime-limit': 10000 } }");
    wait_for_migration_complete(src);
    wait_for_migration_status(dst, "completed", NULL);

    on_src = qtest_readl(src, COUNTER_ADDR);
    on_dst = qtest_readl(dst, COUNTER_ADDR);
    g_test_message("counter: source %u, destination %u", on_src, on_dst);
    g_assert_cmpuint(on_dst, ==, on_src);

    qtest_quit(dst);
    qtest_quit(src);
    unlink(boot);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is not built in");
        return g_test_run();
    }
    qtest_add_func("/fph-tcg-dirty/hot-page-reaches-destination",
                   test_hot_page_reaches_destination);
    return g_test_run();
}
