/*
 * Free page hints (qemu-fph): how a device that learns which guest pages
 * are free tells migration, which then does not send them.
 *
 * Migration owns the skipping.  It arms dirty tracking for all migrating
 * RAM, then asks every registered source for hints, handing it a round
 * token.  The source reports free guest-physical ranges with that token;
 * migration resolves them through the memory map and clears them from its
 * own bitmap only while the round is current.  The next dirty bitmap sync
 * ends the round: a hint that crossed it is stale and dropped, because the
 * sync may have brought in writes made after the guest's snapshot.
 * See docs/free-page-hinting.rst.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef MIGRATION_FREE_PAGE_HINT_H
#define MIGRATION_FREE_PAGE_HINT_H

#include "qemu/queue.h"

/* Rounds are numbered from 1 and never wrap; 0 is no round. */
typedef uint64_t FreePageHintRound;

/* What one source did; read by query-migrate and by its QOM properties. */
typedef struct FreePageHintCounters {
    uint64_t requests;      /* rounds the source was asked for */
    uint64_t answered;      /* rounds it answered in full */
    uint64_t chunks;        /* messages it received, valid or not */
    uint64_t stale_chunks;  /* messages of a round that had ended */
    uint64_t bad_input;     /* malformed or unexpected messages */
    uint64_t bitmap_bytes;  /* bitmap bytes of well-formed messages */
    uint64_t skipped_pages; /* dirty pages cleared from migration */
    uint64_t latency_us;    /* from the last request to its answer */
    uint64_t longest_turn_us; /* of the main loop, spent on hints */
} FreePageHintCounters;

typedef struct FreePageHintSource FreePageHintSource;

/* What migration asks a source for */
typedef struct FreePageHintRequest {
    FreePageHintRound round;    /* the token its reports must carry */
    bool drop_cache;            /* drop clean page cache before reporting */
} FreePageHintRequest;

/* Where a source learns which pages hold nothing the guest needs */
typedef enum FreePageHintKind {
    /*
     * The guest answers a request with its free pages: asked only while
     * it runs, in the first round of a migration and, with
     * free-page-hint-repeat, in every round after a sync but one that
     * leaves little enough to send for migration to stop the guest.
     */
    FREE_PAGE_HINT_FROM_GUEST,
    /*
     * The device knows: pages the guest gave to the balloon.  Asked in
     * the first round of a migration, running or not; it reports with
     * free_page_hint_skip_unbacked(), which skips only pages the host
     * shows empty.
     */
    FREE_PAGE_HINT_BALLOONED,
} FreePageHintKind;

typedef struct FreePageHintSourceOps {
    FreePageHintKind kind;
    /* Whether the source may hint in this migration (it is asked often). */
    bool (*can_hint)(FreePageHintSource *src);
    /*
     * Ask the guest now.  Dirty tracking already logs every write to
     * migrating RAM; reports for this request carry @req->round.
     */
    void (*request)(FreePageHintSource *src, const FreePageHintRequest *req);
    /*
     * Optional: when a migration fails, what the user may have to change
     * if the destination could not load the source's device, or NULL.
     */
    const char *(*failure_hint)(FreePageHintSource *src);
    /*
     * For sources that report with free_page_hint_try_begin(): after it
     * returned FREE_PAGE_HINT_BUSY, migration has let go of its bitmap
     * and waits a little for the source to try again.  Called from the
     * migration thread, without the BQL: schedule a bottom half.
     */
    void (*resume)(FreePageHintSource *src);
} FreePageHintSourceOps;

struct FreePageHintSource {
    const FreePageHintSourceOps *ops;
    FreePageHintCounters counters;

    /* Private to migration/free-page-hint.c */
    FreePageHintRound asked;    /* the round it was last asked for */
    bool answered;              /* ... and has answered in full */
    int64_t asked_ns;
    bool busy;                  /* found the bitmap busy, not resumed */
    bool resumed;               /* resumed, has not tried again yet */
    QLIST_ENTRY(FreePageHintSource) next;
};

/* With the BQL held, from a device's realize and unrealize. */
void free_page_hint_add_source(FreePageHintSource *src,
                               const FreePageHintSourceOps *ops);
void free_page_hint_remove_source(FreePageHintSource *src);

/*
 * Reporting, with the BQL held.  Between begin and end the source may
 * check ranges and skip them; a message it wants applied whole or not at
 * all is checked in full before its first range is skipped:
 *
 *     if (free_page_hint_begin(src, round)) {
 *         if (every range passes free_page_hint_is_guest_ram()) {
 *             free_page_hint_skip(src, gpa, len);   (for each range)
 *         }
 *         free_page_hint_end(src);
 *     }
 *
 * free_page_hint_begin() returns false, and counts a stale chunk, unless
 * @round is the current round.  Guest RAM is RAM of a memory backend
 * (main RAM, NUMA memdevs, DIMMs, virtio-mem), migrating or not; ROM,
 * device RAM such as VRAM, and MMIO are not.  Only migrating guest RAM is
 * skipped, page by page: a range may span several RAM blocks.
 */
bool free_page_hint_round_is_current(FreePageHintRound round);
/* Whether @mr is guest RAM in that sense; any time, round or not */
struct MemoryRegion;
bool free_page_hint_region_is_guest_ram(struct MemoryRegion *mr);
bool free_page_hint_begin(FreePageHintSource *src, FreePageHintRound round);
/*
 * The same from the main loop, for a source that must not wait there: the
 * migration thread holds its bitmap while it sends, for 50 ms at a time
 * and for as long as the destination is slow to read, and a wait for it
 * would hold the BQL all that time.  On FREE_PAGE_HINT_BUSY the source
 * keeps the message, counts nothing and stops; ops->resume() follows once
 * migration has let go of the bitmap.
 */
typedef enum FreePageHintBegin {
    FREE_PAGE_HINT_GO,          /* report, then free_page_hint_end() */
    FREE_PAGE_HINT_STALE,       /* as free_page_hint_begin()'s false */
    FREE_PAGE_HINT_BUSY,
} FreePageHintBegin;
FreePageHintBegin free_page_hint_try_begin(FreePageHintSource *src,
                                           FreePageHintRound round);
bool free_page_hint_is_guest_ram(uint64_t gpa, uint64_t len);
void free_page_hint_skip(FreePageHintSource *src, uint64_t gpa, uint64_t len);
/*
 * The same for the set bits of @bitmap (little-endian 64-bit words), one
 * per target page from @gpa: word by word, however fragmented.
 */
void free_page_hint_skip_bitmap(FreePageHintSource *src, uint64_t gpa,
                                const uint8_t *bitmap, uint64_t nr_pages);
/*
 * For FREE_PAGE_HINT_BALLOONED sources: the set bits of @pages (a host
 * bitmap, as QEMU's bitmap.h keeps them, one bit per target page from
 * @gpa) whose pages the host shows hold no data (never backed, or
 * discarded and untouched since; migration/host-mem-holes.h).  Those are
 * skipped without being read.  Dirty tracking was armed before: a write
 * before the look made the page hold data, a write after it is logged.
 */
void free_page_hint_skip_unbacked(FreePageHintSource *src, uint64_t gpa,
                                  const unsigned long *pages,
                                  uint64_t nr_pages);
void free_page_hint_end(FreePageHintSource *src);
/* The source's answer for @round is complete. */
void free_page_hint_answered(FreePageHintSource *src,
                             FreePageHintRound round);

/*
 * For migration: counters of the sources that ask the guest, added up;
 * false if none hints.
 */
bool free_page_hint_query(FreePageHintCounters *sum);
/*
 * Pages skipped because the host showed them empty, since QEMU started;
 * false if skip-unbacked-pages is off.
 */
bool free_page_hint_query_unbacked(uint64_t *skipped_pages);
/* Pages of the balloon skipped; false if no balloon keeps a bitmap. */
bool free_page_hint_query_ballooned(uint64_t *skipped_pages);
/*
 * For the migration thread, without the BQL or the bitmap lock, before
 * each iteration over RAM: the first time in a migration, wait up to
 * free-page-hint-wait milliseconds for every source asked in the current
 * round to answer; every time, resume the sources that found the bitmap
 * busy and give them a moment to report.
 */
void free_page_hint_before_iteration(void);
/*
 * For migration's convergence check: the RAM still to send, @remaining
 * bytes, as it should count against @max_size (what fits in the downtime
 * limit): no less than @max_size while a first pass that skipped pages
 * has pages left, so that the guest is not stopped in its middle.  The
 * next sync asks the guest again only if it leaves more than @max_size.
 */
uint64_t free_page_hint_pending(uint64_t remaining, uint64_t max_size);

#endif
