/*
 * virtio-balloon bulk inflate and deflate (qemu-fph): with the feature
 * negotiated, each buffer on the inflate and deflate queues is a message
 * of guest-physical ranges (hw/virtio/bulk-balloon.c parses it) instead
 * of an array of page numbers.  A message is checked whole before any of
 * it is acted on; an inflate then discards each range with one call per
 * RAM block it covers.  See docs/free-page-hinting.rst.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "exec/address-spaces.h"
#include "exec/cpu-common.h"
#include "exec/memory.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-balloon.h"
#include "hw/virtio/virtio-balloon-pages.h"
#include "trace.h"

/* Bad input of one class is reported this many times, then counted only. */
#define BULK_REPORT_LIMIT 10

#define BULK_MAX_MESSAGE \
    (BULK_HEADER_SIZE + (size_t)BULK_MAX_RANGES * BULK_RANGE_SIZE)

/* Where a range lies in one RAM block */
typedef struct BulkPiece {
    RAMBlock *rb;
    ram_addr_t offset;
    uint64_t gpa;
    uint64_t len;
} BulkPiece;

static const char *bulk_queue_name(VirtIOBalloon *s, VirtQueue *vq)
{
    return vq == s->ivq ? "inflate" : "deflate";
}

/* @r: the range at fault, or NULL for a fault of the whole message */
static void bulk_bad_input(VirtIOBalloon *s, VirtQueue *vq, BulkError err,
                           const BulkRange *r)
{
    VirtIOBalloonBulk *b = &s->bulk;
    g_autofree char *where = NULL;

    b->bad_input++;
    trace_virtio_balloon_bulk_bad_input(bulk_queue_name(s, vq),
                                        bulk_error_str(err),
                                        r ? r->gpa : 0, r ? r->len : 0);
    if (b->bad_reported[err] >= BULK_REPORT_LIMIT) {
        return;
    }
    b->bad_reported[err]++;
    if (r) {
        where = g_strdup_printf(" (range at 0x%" PRIx64 ", 0x%" PRIx64
                                " bytes)", r->gpa, r->len);
    }
    warn_report("virtio-balloon: bulk %s message from the guest ignored, "
                "nothing discarded: %s%s%s", bulk_queue_name(s, vq),
                bulk_error_str(err), where ?: "",
                b->bad_reported[err] == BULK_REPORT_LIMIT ?
                "; further reports of this kind are suppressed" : "");
}

static bool bulk_top_of_ram(Int128 start, Int128 len, const MemoryRegion *mr,
                            hwaddr offset_in_region, void *opaque)
{
    uint64_t *top = opaque;

    if (free_page_hint_region_is_guest_ram((MemoryRegion *)mr)) {
        *top = MAX(*top, int128_get64(int128_add(start, len)));
    }
    return false;
}

/* The end of the highest guest RAM: what tells out of range from holes */
static uint64_t bulk_ram_top(void)
{
    uint64_t top = 0;

    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(address_space_to_flatview(
                                    &address_space_memory),
                                bulk_top_of_ram, &top);
    }
    return top;
}

/*
 * Split @r at RAM block boundaries into @pieces; false, with *@bad the
 * part at fault, if any of it is not guest RAM.  The BQL is held until
 * the pieces are used, so the memory map cannot change in between.
 */
static bool bulk_resolve(const BulkRange *r, GArray *pieces, BulkRange *bad)
{
    uint64_t gpa = r->gpa, end = r->gpa + r->len;

    while (gpa < end) {
        MemoryRegionSection sec = memory_region_find(get_system_memory(),
                                                     gpa, end - gpa);
        BulkPiece p = { .gpa = gpa };
        bool ram = sec.mr && sec.offset_within_address_space == gpa &&
                   free_page_hint_region_is_guest_ram(sec.mr);

        if (ram) {
            p.len = int128_get64(sec.size);
            p.rb = qemu_ram_block_from_host(
                (uint8_t *)memory_region_get_ram_ptr(sec.mr) +
                sec.offset_within_region, false, &p.offset);
            ram = p.rb != NULL;
        }
        if (sec.mr) {
            memory_region_unref(sec.mr);
        }
        if (!ram) {
            *bad = (BulkRange) { .gpa = gpa, .len = end - gpa };
            return false;
        }
        g_array_append_val(pieces, p);
        gpa += p.len;
    }
    return true;
}

/*
 * Only whole host pages can go: with huge pages, the ends of a range that
 * cover part of one stay (the guest's driver allocates large blocks, so
 * this costs little; no partial state is kept).
 */
static void bulk_discard(VirtIOBalloon *s, const BulkPiece *p)
{
    uint64_t start, size;
    int ret;

    if (!bulk_whole_pages(p->offset, p->len, qemu_ram_pagesize(p->rb),
                          &start, &size)) {
        return;
    }
    ret = ram_block_discard_range(p->rb, start, size);
    trace_virtio_balloon_bulk_discard(p->gpa + (start - p->offset), size,
                                      ret);
    if (ret) {
        return;     /* reported by ram_block_discard_range(); not fatal */
    }
    s->bulk.discarded_pages += size / BULK_PAGE_SIZE;
    virtio_balloon_pages_discarded(s, p->gpa + (start - p->offset), size);
}

static void bulk_handle_message(VirtIOBalloon *s, VirtQueue *vq,
                                VirtQueueElement *elem, bool inhibited)
{
    size_t len = iov_size(elem->out_sg, elem->out_num);
    g_autoptr(GArray) pieces = NULL;
    g_autofree uint8_t *buf = NULL;
    g_autofree BulkRange *ranges = NULL;
    BulkRange bad;
    BulkHeader hdr;
    BulkError err;
    uint32_t i, nr;
    uint64_t bytes = 0;

    s->bulk.messages++;
    if (elem->in_num) {
        bulk_bad_input(s, vq, BULK_ERR_DIRECTION, NULL);
        return;
    }
    if (len > BULK_MAX_MESSAGE) {
        bulk_bad_input(s, vq, BULK_ERR_LENGTH, NULL);
        return;
    }
    buf = g_malloc(len);
    iov_to_buf(elem->out_sg, elem->out_num, 0, buf, len);
    err = bulk_parse_header(buf, len, &hdr);
    if (err != BULK_OK) {
        bulk_bad_input(s, vq, err, NULL);
        return;
    }
    ranges = g_new(BulkRange, hdr.nr_ranges);
    err = bulk_parse_ranges(buf, &hdr, bulk_ram_top(), ranges, &nr, &bad);
    if (err != BULK_OK) {
        bulk_bad_input(s, vq, err, &bad);
        return;
    }
    /* All of it is guest RAM, or none of it is touched. */
    pieces = g_array_new(false, false, sizeof(BulkPiece));
    for (i = 0; i < nr; i++) {
        if (!bulk_resolve(&ranges[i], pieces, &bad)) {
            bulk_bad_input(s, vq, BULK_ERR_NOT_RAM, &bad);
            return;
        }
        bytes += ranges[i].len;
    }

    if (vq == s->dvq) {
        /* Nothing to do on the host: the next touch faults a page in. */
        for (i = 0; i < nr; i++) {
            virtio_balloon_pages_returned(s, ranges[i].gpa, ranges[i].len);
        }
        s->bulk.returned_pages += bytes / BULK_PAGE_SIZE;
    } else if (!inhibited) {
        for (i = 0; i < pieces->len; i++) {
            bulk_discard(s, &g_array_index(pieces, BulkPiece, i));
        }
    }
    trace_virtio_balloon_bulk_message(bulk_queue_name(s, vq), hdr.nr_ranges,
                                      pieces->len, bytes);
}

bool virtio_balloon_bulk_handle_output(VirtIOBalloon *s, VirtQueue *vq,
                                       bool inhibited)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    int64_t start = qemu_clock_get_us(QEMU_CLOCK_REALTIME);
    VirtQueueElement *elem;

    if (!virtio_vdev_has_feature(vdev, VIRTIO_BALLOON_F_BULK_BALLOON)) {
        return false;
    }
    while ((elem = virtqueue_pop(vq, sizeof(VirtQueueElement)))) {
        bulk_handle_message(s, vq, elem, inhibited);
        virtqueue_push(vq, elem, 0);
        virtio_notify(vdev, vq);
        g_free(elem);
    }
    virtio_balloon_bulk_account(s, vq, start);
    return true;
}

void virtio_balloon_bulk_account(VirtIOBalloon *s, VirtQueue *vq,
                                 int64_t start_us)
{
    uint64_t us = qemu_clock_get_us(QEMU_CLOCK_REALTIME) - start_us;

    if (vq == s->ivq) {
        s->bulk.inflate_us += us;
    } else {
        s->bulk.deflate_us += us;
    }
}

void virtio_balloon_bulk_instance_init(VirtIOBalloon *s)
{
    VirtIOBalloonBulk *b = &s->bulk;
    const struct {
        const char *name;
        uint64_t *counter;
    } counters[] = {
        { "bulk-balloon-messages", &b->messages },
        { "bulk-balloon-bad-input", &b->bad_input },
        { "bulk-balloon-discarded-pages", &b->discarded_pages },
        { "bulk-balloon-returned-pages", &b->returned_pages },
        { "balloon-inflate-us", &b->inflate_us },
        { "balloon-deflate-us", &b->deflate_us },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(counters); i++) {
        object_property_add_uint64_ptr(OBJECT(s), counters[i].name,
                                       counters[i].counter,
                                       OBJ_PROP_FLAG_READ);
    }
}
