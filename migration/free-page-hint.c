/*
 * Free page hints (qemu-fph): migration's side.  Sources (the balloon's
 * free page bitmap and its ballooned pages) report free guest-physical
 * ranges; this file decides when they may be asked, which reports are
 * still valid, what memory a report may cover, and clears the pages from
 * the migration bitmap.  See include/migration/free-page-hint.h and
 * docs/free-page-hinting.rst.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "qemu/bitmap.h"
#include "sysemu/hostmem.h"
#include "sysemu/runstate.h"
#include "migration/misc.h"
#include "migration/free-page-hint.h"
#include "migration.h"
#include "ram.h"
#include "guest-ram-map.h"
#include "host-mem-holes.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "trace.h"

/*
 * The migration thread waits in slices this long, so that a cancelled
 * migration stops waiting soon even if no answer wakes it.
 */
#define WAIT_SLICE_MS 50
/*
 * How long the migration thread, between two iterations, waits for the
 * sources it resumed to report: a turn of the main loop, unless that is
 * busy with something else.  A source reset meanwhile never reports.
 */
#define RESUME_WAIT_MS 20

static QLIST_HEAD(, FreePageHintSource) sources =
    QLIST_HEAD_INITIALIZER(sources);
static NotifierWithReturn precopy_notifier;
static Notifier migration_state_notifier;
/* From migrate to its end; not a snapshot, whose stream may be loaded
 * into a running guest's memory */
static bool migrating;

/* Changed with the BQL held; read by the waiting thread under lock. */
static struct {
    FreePageHintRound current;  /* the last round started */
    bool open;                  /* hints of the current round apply */
    unsigned int unanswered;    /* sources asked in it, not done yet */
    unsigned int resumed;       /* sources resumed, not tried again yet */
    bool waited;                /* the first pass of this migration did */
    QemuMutex lock;
    QemuCond answer;
} round;

/* With the BQL, while a round is open: the memory map at its start. */
static GArray *guest_ram;
/* Rounds started in this migration, for free-page-hint-repeat */
static uint64_t rounds_this_migration;
/* Dirty bitmap syncs of this migration so far */
static uint64_t syncs_this_migration;
/* Between COMPLETE and CLEANUP: the final sync starts no round */
static bool completing;
/*
 * Pages of migrating RAM that hints or the unbacked skip cleared; set
 * under the bitmap lock, read by the migration thread without it
 */
static bool skipped_this_migration;
/* What the first pass had left when free_page_hint_pending() last held */
static uint64_t held_pending;
/* What fits in the downtime limit, as migration last said */
static uint64_t switchover_bytes;

/*
 * Guest RAM is what a memory backend provides: main RAM, NUMA memdevs,
 * DIMMs, virtio-mem.  Video RAM, ROMs and RAM of passed-through devices
 * are RAM too, but never free in the guest's sense.
 */
bool free_page_hint_region_is_guest_ram(MemoryRegion *mr)
{
    return memory_region_is_ram(mr) && !memory_region_is_ram_device(mr) &&
           !memory_region_is_rom(mr) && !mr->rom_device &&
           object_dynamic_cast(mr->owner, TYPE_MEMORY_BACKEND);
}

static bool collect_guest_ram(Int128 start, Int128 len,
                              const MemoryRegion *mr,
                              hwaddr offset_in_region, void *opaque)
{
    MemoryRegion *region = (MemoryRegion *)mr;   /* to take a reference */
    GuestRamRange r;

    if (!free_page_hint_region_is_guest_ram(region)) {
        return false;
    }
    r = (GuestRamRange) {
        .gpa = int128_get64(start),
        .size = int128_get64(len),
        .offset = offset_in_region,
        .region = region,
    };
    if (mr->ram_block && !ramblock_is_ignored(mr->ram_block)) {
        r.block = mr->ram_block;
    }
    memory_region_ref(r.region);
    g_array_append_val(guest_ram, r);
    return false;
}

static void forget_guest_ram(void)
{
    guint i;

    if (!guest_ram) {
        return;
    }
    for (i = 0; i < guest_ram->len; i++) {
        memory_region_unref(g_array_index(guest_ram, GuestRamRange,
                                          i).region);
    }
    g_array_free(guest_ram, true);
    guest_ram = NULL;
}

/*
 * The memory map at the start of a round.  Memory devices cannot come or
 * go while migrating, and the references keep them until the round ends.
 * The flat view is sorted by address, and so is the table.
 */
static void snapshot_guest_ram(void)
{
    forget_guest_ram();
    guest_ram = g_array_new(false, false, sizeof(GuestRamRange));
    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(address_space_to_flatview(
                                    &address_space_memory),
                                collect_guest_ram, NULL);
    }
}

bool free_page_hint_round_is_current(FreePageHintRound r)
{
    return r && round.open && r == round.current;
}

bool free_page_hint_is_guest_ram(uint64_t gpa, uint64_t len)
{
    return guest_ram && guest_ram_covers((GuestRamRange *)guest_ram->data,
                                         guest_ram->len, gpa, len);
}

/* Dirty pages cleared between begin and end, for migration's count */
static uint64_t cleared_in_message;

static void count_stale(FreePageHintSource *src, FreePageHintRound r)
{
    src->counters.stale_chunks++;
    trace_free_page_hint_stale(r, round.current);
}

bool free_page_hint_begin(FreePageHintSource *src, FreePageHintRound r)
{
    if (!free_page_hint_round_is_current(r) || !ram_hint_lock()) {
        count_stale(src, r);
        return false;
    }
    cleared_in_message = 0;
    return true;
}

FreePageHintBegin free_page_hint_try_begin(FreePageHintSource *src,
                                           FreePageHintRound r)
{
    int locked = -ENOENT;

    qemu_mutex_lock(&round.lock);
    if (src->resumed) {
        /* The migration thread waits for this: it may go on now */
        src->resumed = false;
        round.resumed--;
        qemu_cond_broadcast(&round.answer);
    }
    qemu_mutex_unlock(&round.lock);

    if (free_page_hint_round_is_current(r)) {
        locked = ram_hint_trylock();
    }
    if (locked == -EBUSY) {
        qemu_mutex_lock(&round.lock);
        src->busy = true;
        qemu_mutex_unlock(&round.lock);
        trace_free_page_hint_busy(r);
        return FREE_PAGE_HINT_BUSY;
    }
    if (locked < 0) {
        count_stale(src, r);
        return FREE_PAGE_HINT_STALE;
    }
    cleared_in_message = 0;
    return FREE_PAGE_HINT_GO;
}

/*
 * The migration bitmap of the RAM block behind @r, checked against its
 * length.  Its lazily cleared dirty log (clear_bmap) needs nothing: the
 * round started by clearing all of it, and only a sync, which ends the
 * round, sets it again.
 */
static unsigned long *block_bitmap(const GuestRamRange *r, uint64_t offset,
                                   uint64_t len)
{
    RAMBlock *rb = r->block;

    if (!rb || !rb->bmap || offset + len > rb->used_length) {
        return NULL;
    }
    return rb->bmap;
}

static void skip_piece(const GuestRamRange *r, uint64_t offset,
                       uint64_t len, void *opaque)
{
    unsigned long *bmap = block_bitmap(r, offset, len);
    FreePageHintSource *src = opaque;
    int bits = qemu_target_page_bits();
    uint64_t start = offset >> bits, npages = len >> bits;
    uint64_t cleared;

    if (bmap) {
        cleared = bitmap_count_one_with_offset(bmap, start, npages);
        bitmap_clear(bmap, start, npages);
        src->counters.skipped_pages += cleared;
        cleared_in_message += cleared;
    }
}

void free_page_hint_skip(FreePageHintSource *src, uint64_t gpa, uint64_t len)
{
    if (guest_ram) {
        guest_ram_for_each_piece((GuestRamRange *)guest_ram->data,
                                 guest_ram->len, gpa, len, skip_piece, src);
    }
}

typedef struct SkipBitmap {
    FreePageHintSource *src;
    uint64_t gpa;               /* of bit 0 */
    const uint8_t *bitmap;
} SkipBitmap;

static void skip_bitmap_piece(const GuestRamRange *r, uint64_t offset,
                              uint64_t len, void *opaque)
{
    unsigned long *bmap = block_bitmap(r, offset, len);
    SkipBitmap *sb = opaque;
    int bits = qemu_target_page_bits();
    uint64_t gpa = r->gpa + (offset - r->offset);
    uint64_t cleared;

    if (bmap) {
        cleared = guest_ram_clear_bits(bmap, offset >> bits, sb->bitmap,
                                       (gpa - sb->gpa) >> bits, len >> bits);
        sb->src->counters.skipped_pages += cleared;
        cleared_in_message += cleared;
    }
}

void free_page_hint_skip_bitmap(FreePageHintSource *src, uint64_t gpa,
                                const uint8_t *bitmap, uint64_t nr_pages)
{
    SkipBitmap sb = { .src = src, .gpa = gpa, .bitmap = bitmap };

    if (guest_ram) {
        guest_ram_for_each_piece((GuestRamRange *)guest_ram->data,
                                 guest_ram->len, gpa,
                                 nr_pages << qemu_target_page_bits(),
                                 skip_bitmap_piece, &sb);
    }
}

typedef struct SkipUnbacked {
    uint64_t *skipped;          /* the count to add the pages to */
    uint64_t gpa;               /* of bit 0 */
    const unsigned long *pages; /* candidates; NULL: every page */
} SkipUnbacked;

/* Pages skipped because the host showed them empty, since QEMU started */
static uint64_t unbacked_skipped;

/*
 * Looks at the host only in windows with a page to skip, one read of the
 * page map per window: a balloon of scattered pages costs a read per 2 MiB
 * of guest memory, not one per page.
 */
static void skip_unbacked_piece(const GuestRamRange *r, uint64_t offset,
                                uint64_t len, void *opaque)
{
    unsigned long *bmap = block_bitmap(r, offset, len);
    uint8_t holes[HOST_MEM_HOLES_MAX / 8];
    SkipUnbacked *su = opaque;
    RAMBlock *rb = r->block;
    int bits = qemu_target_page_bits();
    uint64_t first = (r->gpa + (offset - r->offset) - su->gpa) >> bits;
    uint64_t npages = len >> bits, block_page = offset >> bits;
    uint64_t win, end, i, cleared = 0;
    HostMem host;

    /*
     * A hole is a host page: it must be a target page too.  Persistent
     * memory holds data the destination has no business keeping or not.
     */
    if (!bmap || qemu_ram_pagesize(rb) != qemu_target_page_size() ||
        (rb->flags & RAM_PMEM)) {
        return;
    }
    host = (HostMem) {
        .host = rb->host,
        .fd = rb->fd,
        .shared = qemu_ram_is_shared(rb),
        .page_size = qemu_ram_pagesize(rb),
    };
    for (win = 0; win < npages; win += HOST_MEM_HOLES_MAX) {
        uint64_t n = MIN(HOST_MEM_HOLES_MAX, npages - win);

        end = first + win + n;
        i = su->pages ? find_next_bit(su->pages, end, first + win)
                      : first + win;
        if (i >= end) {
            continue;
        }
        memset(holes, 0, sizeof(holes));
        if (!host_mem_find_holes(&host, offset + (win << bits), n, holes)) {
            trace_free_page_hint_unbacked_unknown(rb->idstr,
                                                  offset + (win << bits));
            break;      /* what it cleared so far still counts */
        }
        if (!su->pages) {
            cleared += guest_ram_clear_bits(bmap, block_page + win, holes, 0,
                                            n);
            continue;
        }
        for (; i < end; i = find_next_bit(su->pages, end, i + 1)) {
            uint64_t page = i - first;

            if (holes[(page - win) / 8] & (1 << ((page - win) % 8)) &&
                test_and_clear_bit(block_page + page, bmap)) {
                cleared++;
            }
        }
    }
    *su->skipped += cleared;
    cleared_in_message += cleared;
}

void free_page_hint_skip_unbacked(FreePageHintSource *src, uint64_t gpa,
                                  const unsigned long *pages,
                                  uint64_t nr_pages)
{
    SkipUnbacked su = {
        .skipped = &src->counters.skipped_pages,
        .gpa = gpa,
        .pages = pages,
    };

    if (guest_ram && nr_pages) {
        guest_ram_for_each_piece((GuestRamRange *)guest_ram->data,
                                 guest_ram->len, gpa,
                                 nr_pages << qemu_target_page_bits(),
                                 skip_unbacked_piece, &su);
    }
}

/* Release the bitmap lock taken for a message; note that pages went. */
static void hint_unlock(void)
{
    if (cleared_in_message) {
        qatomic_set(&skipped_this_migration, true);
    }
    ram_hint_unlock(cleared_in_message);
}

/*
 * Every page of migrating guest RAM the host shows empty: never touched,
 * or discarded (balloon, free page reporting) and not touched since.  The
 * destination, which is fresh, reads zeros there too.  Once, in the first
 * round, after the sources: what they report counts as theirs.
 */
static void skip_all_unbacked(void)
{
    SkipUnbacked su = { .skipped = &unbacked_skipped };
    uint64_t before = unbacked_skipped;
    int64_t start = qemu_clock_get_us(QEMU_CLOCK_REALTIME);
    guint i;

    if (!ram_hint_lock()) {
        return;
    }
    cleared_in_message = 0;
    for (i = 0; i < guest_ram->len; i++) {
        const GuestRamRange *r = &g_array_index(guest_ram, GuestRamRange, i);

        skip_unbacked_piece(r, r->offset, r->size, &su);
    }
    hint_unlock();
    trace_free_page_hint_unbacked(guest_ram->len, unbacked_skipped - before,
                                  qemu_clock_get_us(QEMU_CLOCK_REALTIME) -
                                  start);
}

void free_page_hint_end(FreePageHintSource *src)
{
    hint_unlock();
}

void free_page_hint_answered(FreePageHintSource *src, FreePageHintRound r)
{
    if (!free_page_hint_round_is_current(r) || src->asked != r ||
        src->answered) {
        return;
    }
    src->counters.answered++;
    src->counters.latency_us = (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) -
                                src->asked_ns) / SCALE_US;
    trace_free_page_hint_answered(r, src->counters.latency_us);
    qemu_mutex_lock(&round.lock);
    src->answered = true;
    round.unanswered--;
    qemu_cond_broadcast(&round.answer);
    qemu_mutex_unlock(&round.lock);
}

/*
 * With round.lock held: ask each source that found the bitmap busy to try
 * again, which it does in the main loop.  Returns how many.
 */
static unsigned int resume_busy_sources(void)
{
    FreePageHintSource *src;
    unsigned int n = 0;

    QLIST_FOREACH(src, &sources, next) {
        if (src->busy) {
            src->busy = false;
            src->resumed = true;
            round.resumed++;
            src->ops->resume(src);
            n++;
        }
    }
    return n;
}

static void forget_resumed_sources(void)
{
    FreePageHintSource *src;

    QLIST_FOREACH(src, &sources, next) {
        src->resumed = false;
    }
    round.resumed = 0;
}

/*
 * A sync brings writes made since the request into the migration bitmap;
 * a hint applied after it could clear them.  So the round ends first.
 */
static void end_round(void)
{
    if (round.open) {
        trace_free_page_hint_end_round(round.current, round.unanswered);
    }
    qemu_mutex_lock(&round.lock);
    round.open = false;
    round.unanswered = 0;
    /* What they kept is stale now: let them drop it and go on */
    resume_busy_sources();
    forget_resumed_sources();
    qemu_cond_broadcast(&round.answer);
    qemu_mutex_unlock(&round.lock);
    forget_guest_ram();
}

/*
 * After a sync that leaves no more to send than fits in the downtime
 * limit, migration stops the guest.  A guest asked then answers on the
 * destination, which drops the answer: the guest's work is wasted, right
 * when it should run again.
 */
static bool guest_stops_next(void)
{
    return switchover_bytes && ram_bytes_remaining() < switchover_bytes;
}

/* Whether @src is asked in the round about to start */
static bool source_wanted(FreePageHintSource *src, bool first)
{
    if (!src->ops->can_hint(src)) {
        return false;
    }
    switch (src->ops->kind) {
    case FREE_PAGE_HINT_FROM_GUEST:
        /*
         * A stopped guest cannot answer, and the pages it had free are
         * not worth a round.
         */
        return runstate_is_running() &&
               (first || (migrate_free_page_hint_repeat() &&
                          !guest_stops_next()));
    case FREE_PAGE_HINT_BALLOONED:
        /* Ballooned pages stay clean: once in the bulk stage is enough. */
        return first;
    }
    g_assert_not_reached();
}

static void start_round(void)
{
    FreePageHintSource *src;
    bool first = !rounds_this_migration;
    /* Only before the first pass: later, a sent page may have gone */
    bool unbacked = syncs_this_migration == 1 && migrating &&
                    migrate_skip_unbacked_pages();
    bool wanted = false;

    /*
     * A page skipped here would stall a postcopy fault on the destination
     * until the end: no hints with postcopy.
     */
    if (migrate_postcopy_ram()) {
        return;
    }
    QLIST_FOREACH(src, &sources, next) {
        wanted |= source_wanted(src, first);
    }
    if (!wanted && !unbacked) {
        return;
    }

    /*
     * Every write the guest makes after its snapshot must reach the next
     * sync, even to a page that was dirty at this one.
     */
    ram_rearm_dirty_tracking();
    snapshot_guest_ram();
    rounds_this_migration++;

    qemu_mutex_lock(&round.lock);
    round.current++;
    round.open = true;
    QLIST_FOREACH(src, &sources, next) {
        if (source_wanted(src, first)) {
            src->asked = round.current;
            src->answered = false;
            round.unanswered++;
        }
    }
    qemu_mutex_unlock(&round.lock);
    trace_free_page_hint_start_round(round.current, guest_ram->len);

    QLIST_FOREACH(src, &sources, next) {
        if (src->asked == round.current) {
            FreePageHintRequest req = {
                .round = round.current,
                .drop_cache = migrate_free_page_hint_drop_cache(),
            };

            src->asked_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
            src->counters.requests++;
            src->ops->request(src, &req);
        }
    }
    if (unbacked) {
        skip_all_unbacked();
    }
}

/* What one migration learnt: at its start and when it is cleaned up */
static void forget_this_migration(void)
{
    rounds_this_migration = 0;
    syncs_this_migration = 0;
    completing = false;
    qatomic_set(&skipped_this_migration, false);
    held_pending = 0;
    switchover_bytes = 0;
    qemu_mutex_lock(&round.lock);
    round.waited = false;
    qemu_mutex_unlock(&round.lock);
}

static int free_page_hint_precopy_notify(NotifierWithReturn *n, void *data)
{
    PrecopyNotifyData *pnd = data;

    switch (pnd->reason) {
    case PRECOPY_NOTIFY_BEFORE_BITMAP_SYNC:
        end_round();
        break;
    case PRECOPY_NOTIFY_AFTER_BITMAP_SYNC:
        syncs_this_migration++;
        if (!completing) {
            start_round();
        }
        break;
    case PRECOPY_NOTIFY_COMPLETE:
        /* Before the final sync, with the guest stopped */
        end_round();
        completing = true;
        break;
    case PRECOPY_NOTIFY_CLEANUP:
        /* Not at SETUP, which comes after the first sync and its round */
        end_round();
        forget_this_migration();
        migrating = false;
        break;
    default:
        break;
    }
    return 0;
}

/*
 * A destination that cannot load a source's device often cannot say why,
 * and without return-path the source does not even learn of it.  With it,
 * the source says what to set, in the migration's error.
 */
static void free_page_hint_migration_state(Notifier *n, void *data)
{
    MigrationState *s = data;
    FreePageHintSource *src;
    Error *err = NULL;

    if (s->state == MIGRATION_STATUS_SETUP) {
        /*
         * Told before the migration thread starts.  Migration sets up the
         * precopy notifier list after module init, so this joins it here.
         */
        if (!precopy_notifier.notify) {
            precopy_notifier.notify = free_page_hint_precopy_notify;
            precopy_add_notifier(&precopy_notifier);
        }
        forget_this_migration();
        migrating = true;
        return;
    }
    /* Also when it ended before its first sync */
    if (migration_has_finished(s) || migration_has_failed(s)) {
        migrating = false;
    }
    if (s->state != MIGRATION_STATUS_FAILED) {
        return;
    }
    QLIST_FOREACH(src, &sources, next) {
        const char *hint = src->ops->failure_hint ?
                           src->ops->failure_hint(src) : NULL;

        if (hint) {
            error_setg(&err, "%s", hint);
            migrate_set_error(s, err);
            warn_report_err(err);
            return;
        }
    }
}

static void free_page_hint_init(void)
{
    /* Never destroyed: a waiter may outlive any one source. */
    qemu_mutex_init(&round.lock);
    qemu_cond_init(&round.answer);
    migration_state_notifier.notify = free_page_hint_migration_state;
    add_migration_state_change_notifier(&migration_state_notifier);
}
migration_init(free_page_hint_init);

void free_page_hint_add_source(FreePageHintSource *src,
                               const FreePageHintSourceOps *ops)
{
    src->ops = ops;
    src->asked = 0;
    src->busy = false;
    src->resumed = false;
    /* The migration thread walks the list to resume sources */
    qemu_mutex_lock(&round.lock);
    QLIST_INSERT_HEAD(&sources, src, next);
    qemu_mutex_unlock(&round.lock);
}

void free_page_hint_remove_source(FreePageHintSource *src)
{
    qemu_mutex_lock(&round.lock);
    if (round.open && src->asked == round.current && !src->answered) {
        round.unanswered--;
        qemu_cond_broadcast(&round.answer);
    }
    if (src->resumed) {
        round.resumed--;
        qemu_cond_broadcast(&round.answer);
    }
    QLIST_REMOVE(src, next);
    qemu_mutex_unlock(&round.lock);
}

bool free_page_hint_query_unbacked(uint64_t *skipped_pages)
{
    *skipped_pages = unbacked_skipped;
    return migrate_skip_unbacked_pages();
}

bool free_page_hint_query_ballooned(uint64_t *skipped_pages)
{
    FreePageHintSource *src;
    bool any = false;

    *skipped_pages = 0;
    QLIST_FOREACH(src, &sources, next) {
        if (src->ops->kind == FREE_PAGE_HINT_BALLOONED) {
            any = true;
            *skipped_pages += src->counters.skipped_pages;
        }
    }
    return any;
}

bool free_page_hint_query(FreePageHintCounters *sum)
{
    FreePageHintSource *src;
    bool any = false;

    memset(sum, 0, sizeof(*sum));
    QLIST_FOREACH(src, &sources, next) {
        const FreePageHintCounters *c = &src->counters;

        if (src->ops->kind != FREE_PAGE_HINT_FROM_GUEST ||
            !src->ops->can_hint(src)) {
            continue;
        }
        any = true;
        sum->requests += c->requests;
        sum->answered += c->answered;
        sum->chunks += c->chunks;
        sum->stale_chunks += c->stale_chunks;
        sum->bad_input += c->bad_input;
        sum->bitmap_bytes += c->bitmap_bytes;
        sum->skipped_pages += c->skipped_pages;
        sum->latency_us = MAX(sum->latency_us, c->latency_us);
        sum->longest_turn_us = MAX(sum->longest_turn_us, c->longest_turn_us);
    }
    return any;
}

/*
 * Migration stops the guest once the dirty pages left fit in the downtime
 * limit at the measured bandwidth, even in the middle of the first pass.
 * Pages skipped as free or empty are not dirty, so a first pass that
 * skipped many reaches that point with real data left, all of which is
 * then sent with the guest stopped: up to the whole downtime limit (250
 * to 290 ms of a 300 ms limit in a fragmented 1 GiB guest, against 30 to
 * 40 ms with hints off, whose empty pages count as dirty until the pass
 * has read them, so that it reaches the end first).  Until the first pass
 * has sent its last page, report at least @max_size: the pass runs to its
 * end while the guest runs, and the guest stops after a sync, with only
 * what it wrote meanwhile left to send.
 */
uint64_t free_page_hint_pending(uint64_t remaining, uint64_t max_size)
{
    switchover_bytes = max_size;
    if (!migrating || completing || syncs_this_migration != 1 ||
        !qatomic_read(&skipped_this_migration) || !remaining ||
        remaining >= max_size) {
        return remaining;
    }
    /*
     * The pass only ever shrinks: if it did not since the last look, the
     * count is not what the pass will send, and holding could be forever.
     */
    if (held_pending && remaining >= held_pending) {
        trace_free_page_hint_first_pass_stuck(remaining);
        return remaining;
    }
    held_pending = remaining;
    trace_free_page_hint_first_pass_pending(remaining, max_size);
    return max_size;
}

/*
 * Sources that found the bitmap busy while the last iteration sent: they
 * report now, while the bitmap is free, before it is sent from again.
 */
static void let_busy_sources_report(void)
{
    int64_t start = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    int64_t deadline = start + RESUME_WAIT_MS, now;
    unsigned int n = resume_busy_sources();

    if (!n) {
        return;
    }
    while (round.resumed &&
           (now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME)) < deadline) {
        qemu_cond_timedwait(&round.answer, &round.lock, deadline - now);
    }
    trace_free_page_hint_resumed(n, round.resumed,
                                 qemu_clock_get_ms(QEMU_CLOCK_REALTIME) -
                                 start);
    forget_resumed_sources();
}

void free_page_hint_before_iteration(void)
{
    MigrationState *s = migrate_get_current();
    int64_t deadline, now;

    qemu_mutex_lock(&round.lock);
    let_busy_sources_report();
    if (!round.waited) {
        round.waited = true;
        deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                   migrate_free_page_hint_wait();
        while (round.open && round.unanswered &&
               qatomic_read(&s->state) != MIGRATION_STATUS_CANCELLING &&
               (now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME)) < deadline) {
            qemu_cond_timedwait(&round.answer, &round.lock,
                                MIN(deadline - now, WAIT_SLICE_MS));
        }
        trace_free_page_hint_waited(round.current, round.unanswered);
    }
    qemu_mutex_unlock(&round.lock);
}
