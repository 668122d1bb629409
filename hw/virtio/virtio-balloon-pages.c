/*
 * virtio-balloon ballooned-page bitmap (qemu-fph).  The device remembers
 * which guest pages it discarded for the balloon, whatever protocol the
 * guest inflated with, and tells migration: the pages hold nothing, so
 * migration skips them without reading them, once the host confirms they
 * are still empty (migration/host-mem-holes.c).  The bitmap travels in
 * the migration stream, so the next host knows them too.
 * See docs/free-page-hinting.rst, "Ballooned pages".
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/target_page.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-balloon.h"
#include "migration/vmstate.h"
#include "migration/qemu-file-types.h"
#include "trace.h"

#define BALLOON_PAGE (1ULL << BALLOON_PAGES_SHIFT)

/*
 * The bitmap grows in steps of this many pages (1 GiB of guest memory,
 * 32 KiB of bitmap), so a balloon filled from the top of memory down does
 * not reallocate on every page.
 */
#define GROWTH_PAGES (1ULL << 18)

static VirtIOBalloonPages *balloon_pages(VirtIOBalloon *s)
{
    return &s->pages;
}

static void pages_grow(VirtIOBalloonPages *p, uint64_t nr_bits)
{
    uint64_t new_bits = ROUND_UP(nr_bits, GROWTH_PAGES);

    if (nr_bits <= p->nr_bits) {
        return;
    }
    p->bitmap = bitmap_zero_extend(p->bitmap, p->nr_bits, new_bits);
    p->nr_bits = new_bits;
}

static void pages_set(VirtIOBalloonPages *p, uint64_t first, uint64_t n)
{
    pages_grow(p, first + n);
    p->count += n - bitmap_count_one_with_offset(p->bitmap, first, n);
    bitmap_set(p->bitmap, first, n);
}

static void pages_clear_all(VirtIOBalloonPages *p)
{
    g_free(p->bitmap);
    p->bitmap = NULL;
    p->nr_bits = 0;
    p->count = 0;
}

/*
 * Every byte of [gpa, gpa + len) is guest RAM, memory of a memory backend:
 * a guest may balloon VRAM or a RAM BAR, which migration never skips and
 * which may move, and a stream may name anything.
 */
static bool pages_are_guest_ram(uint64_t gpa, uint64_t len)
{
    while (len) {
        MemoryRegionSection section;
        bool ram;
        uint64_t got;

        section = memory_region_find(get_system_memory(), gpa, len);
        if (!section.mr) {
            return false;
        }
        ram = section.offset_within_address_space == gpa &&
              free_page_hint_region_is_guest_ram(section.mr);
        got = int128_get64(section.size);
        memory_region_unref(section.mr);
        if (!ram || !got) {
            return false;
        }
        gpa += got;
        len -= got;
    }
    return true;
}

void virtio_balloon_pages_discarded(VirtIOBalloon *s, uint64_t gpa,
                                    uint64_t len)
{
    VirtIOBalloonPages *p = balloon_pages(s);

    if (!p->enabled || !len || !pages_are_guest_ram(gpa, len)) {
        return;
    }
    assert(QEMU_IS_ALIGNED(gpa | len, BALLOON_PAGE));
    pages_set(p, gpa >> BALLOON_PAGES_SHIFT, len >> BALLOON_PAGES_SHIFT);
    trace_virtio_balloon_pages_discarded(gpa, len, p->count);
}

void virtio_balloon_pages_returned(VirtIOBalloon *s, uint64_t gpa,
                                   uint64_t len)
{
    VirtIOBalloonPages *p = balloon_pages(s);
    uint64_t first = gpa >> BALLOON_PAGES_SHIFT;
    uint64_t n = len >> BALLOON_PAGES_SHIFT;

    if (first >= p->nr_bits) {
        return;
    }
    n = MIN(n, p->nr_bits - first);
    p->count -= bitmap_count_one_with_offset(p->bitmap, first, n);
    bitmap_clear(p->bitmap, first, n);
    trace_virtio_balloon_pages_returned(gpa, len, p->count);
}

/*
 * Migration's side.  Ballooned pages need no guest to answer: the device
 * reports them when the first round of a migration starts, right after
 * dirty tracking is armed.  Migration skips only those the host shows
 * empty, so a guest that wrote a ballooned page without taking it out of
 * the balloon first loses nothing: a write before the look made the page
 * hold data, a write after it is dirty-logged.
 */
static bool pages_can_hint(FreePageHintSource *hint)
{
    VirtIOBalloonPages *p = container_of(hint, VirtIOBalloonPages, hint);

    /* The bitmap counts 4 KiB pages; migration's bitmaps target pages */
    return p->enabled && p->count &&
           qemu_target_page_size() == BALLOON_PAGE;
}

static void pages_request(FreePageHintSource *hint,
                          const FreePageHintRequest *req)
{
    VirtIOBalloonPages *p = container_of(hint, VirtIOBalloonPages, hint);
    uint64_t before = hint->counters.skipped_pages;

    if (free_page_hint_begin(hint, req->round)) {
        free_page_hint_skip_unbacked(hint, 0, p->bitmap, p->nr_bits);
        free_page_hint_end(hint);
    }
    free_page_hint_answered(hint, req->round);
    trace_virtio_balloon_pages_skipped(req->round, p->count,
                                       hint->counters.skipped_pages - before);
}

static const char *pages_failure_hint(FreePageHintSource *hint)
{
    VirtIOBalloonPages *p = container_of(hint, VirtIOBalloonPages, hint);

    if (!p->enabled || !p->count) {
        return NULL;
    }
    return "migration failed; a destination other than qemu-fph cannot "
           "load virtio-balloon while pages are in the balloon: to "
           "migrate there, deflate the balloon fully first, or boot the "
           "guest with ballooned-page-bitmap=off on the balloon, or with a "
           "7.1 or older machine type";
}

static const FreePageHintSourceOps pages_hint_ops = {
    .kind = FREE_PAGE_HINT_BALLOONED,
    .can_hint = pages_can_hint,
    .request = pages_request,
    .failure_hint = pages_failure_hint,
};

void virtio_balloon_pages_realize(VirtIOBalloon *s)
{
    VirtIOBalloonPages *p = balloon_pages(s);

    if (p->enabled) {
        free_page_hint_add_source(&p->hint, &pages_hint_ops);
    }
}

void virtio_balloon_pages_unrealize(VirtIOBalloon *s)
{
    VirtIOBalloonPages *p = balloon_pages(s);

    if (p->enabled) {
        free_page_hint_remove_source(&p->hint);
    }
    pages_clear_all(p);
}

/* A reset gives the guest all its memory back, ballooned or not. */
void virtio_balloon_pages_reset(VirtIOBalloon *s)
{
    pages_clear_all(balloon_pages(s));
}

void virtio_balloon_pages_instance_init(VirtIOBalloon *s)
{
    VirtIOBalloonPages *p = balloon_pages(s);

    object_property_add_uint64_ptr(OBJECT(s), "ballooned-pages", &p->count,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(OBJECT(s), "ballooned-pages-skipped",
                                   &p->hint.counters.skipped_pages,
                                   OBJ_PROP_FLAG_READ);
}

/*
 * In the stream: the number of runs of ballooned pages, then each run as
 * its first page number and its length in pages, 64 bits each.  A balloon
 * is mostly long runs, the buddy allocator's free blocks; the docs give
 * sizes measured against the plain bitmap.
 */
static int pages_put_runs(QEMUFile *f, void *pv, size_t size,
                          const VMStateField *field, JSONWriter *vmdesc)
{
    VirtIOBalloonPages *p = pv;
    uint64_t runs = 0, start, end;

    for (start = find_first_bit(p->bitmap, p->nr_bits); start < p->nr_bits;
         start = find_next_bit(p->bitmap, p->nr_bits, end)) {
        end = find_next_zero_bit(p->bitmap, p->nr_bits, start);
        runs++;
    }
    qemu_put_be64(f, runs);
    for (start = find_first_bit(p->bitmap, p->nr_bits); start < p->nr_bits;
         start = find_next_bit(p->bitmap, p->nr_bits, end)) {
        end = find_next_zero_bit(p->bitmap, p->nr_bits, start);
        qemu_put_be64(f, start);
        qemu_put_be64(f, end - start);
    }
    trace_virtio_balloon_pages_saved(p->count, runs, 8 + runs * 16,
                                     DIV_ROUND_UP(p->nr_bits, 8));
    return 0;
}

static int pages_get_runs(QEMUFile *f, void *pv, size_t size,
                          const VMStateField *field)
{
    VirtIOBalloonPages *p = pv;
    uint64_t runs, i, start, n, end = 0;
    int ret;

    pages_clear_all(p);
    runs = qemu_get_be64(f);
    for (i = 0; i < runs; i++) {
        start = qemu_get_be64(f);
        n = qemu_get_be64(f);
        ret = qemu_file_get_error(f);
        if (ret) {
            return ret;
        }
        /* Sorted and apart, or the stream is broken */
        if (!n || start < end || start + n < start ||
            start + n > (UINT64_MAX >> BALLOON_PAGES_SHIFT)) {
            error_report("virtio-balloon: ballooned pages %" PRIu64
                         "+%" PRIu64 " in the migration stream out of "
                         "order", start, n);
            pages_clear_all(p);
            return -EINVAL;
        }
        end = start + n;
        /*
         * Not guest RAM here: forgotten.  The bitmap only names pages to
         * look at; what is skipped is what the host shows empty.
         */
        if (!pages_are_guest_ram(start << BALLOON_PAGES_SHIFT,
                                 n << BALLOON_PAGES_SHIFT)) {
            warn_report_once("virtio-balloon: ballooned pages in the "
                             "migration stream that are not guest RAM "
                             "here are forgotten");
            continue;
        }
        pages_set(p, start, n);
    }
    return 0;
}

static const VMStateInfo pages_runs_info = {
    .name = "virtio-balloon-ballooned-page-runs",
    .get = pages_get_runs,
    .put = pages_put_runs,
};

static bool pages_vmstate_needed(void *opaque)
{
    VirtIOBalloonPages *p = balloon_pages(opaque);

    /* Nothing ballooned: the stream is what stock QEMU sends */
    return p->enabled && p->count;
}

static int pages_post_load(void *opaque, int version_id)
{
    VirtIOBalloonPages *p = balloon_pages(opaque);

    /* A destination with the bitmap off forgets what it was sent */
    if (!p->enabled) {
        pages_clear_all(p);
    }
    trace_virtio_balloon_pages_loaded(p->count);
    return 0;
}

const VMStateDescription vmstate_virtio_balloon_pages = {
    .name = "virtio-balloon-device/ballooned-pages",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = pages_vmstate_needed,
    .post_load = pages_post_load,
    .fields = (VMStateField[]) {
        {
            .name = "runs",
            .info = &pages_runs_info,
            .size = sizeof(VirtIOBalloonPages),
            .flags = VMS_SINGLE,
            .offset = offsetof(VirtIOBalloon, pages),
        },
        VMSTATE_END_OF_LIST()
    }
};
