/*
 * virtio-balloon free page bitmap (qemu-fph): the device side of the
 * protocol.  Migration asks for a round of hints (migration/free-page-hint.c
 * decides when, and arms dirty tracking first); the device turns that into
 * a request to the driver, validates the chunks of its answer and reports
 * their free ranges to migration with the round's token.  What may be
 * skipped, and whether a round is still current, is migration's call.
 * See docs/free-page-hinting.rst.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "exec/cpu-common.h"
#include "exec/target_page.h"
#include "sysemu/runstate.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-balloon.h"
#include "migration/vmstate.h"
#include "trace.h"

/* Enough for a driver that keeps one request buffer and a few chunks. */
#define FPB_QUEUE_SIZE 64

/* Bad input of one class is reported this many times, then counted only. */
#define FPB_REPORT_LIMIT 10

static VirtIOBalloon *fpb_balloon(VirtIOBalloonFpb *fpb)
{
    return container_of(fpb, VirtIOBalloon, fpb);
}

static void fpb_bad_input(VirtIOBalloonFpb *fpb, FpbError err,
                          uint32_t cmd_id)
{
    fpb->hint.counters.bad_input++;
    trace_virtio_balloon_fpb_bad_input(fpb_error_str(err), cmd_id);
    if (fpb->bad_reported[err] < FPB_REPORT_LIMIT) {
        fpb->bad_reported[err]++;
        warn_report("virtio-balloon: free page bitmap from the guest "
                    "ignored: %s (command id %u)%s", fpb_error_str(err),
                    cmd_id, fpb->bad_reported[err] == FPB_REPORT_LIMIT ?
                    "; further reports of this kind are suppressed" : "");
    }
}

bool virtio_balloon_fpb_enabled(VirtIOBalloon *s)
{
    return virtio_vdev_has_feature(VIRTIO_DEVICE(s),
                                   VIRTIO_BALLOON_F_FREE_PAGE_BITMAP);
}

/* Give a buffer back to the driver, @len bytes of it written. */
static void fpb_return_buffer(VirtIOBalloonFpb *fpb, VirtQueueElement *elem,
                              unsigned int len)
{
    virtqueue_push(fpb->vq, elem, len);
    g_free(elem);
}

/* Forget the slot without giving it back: the queue was reset. */
static void fpb_drop_slot(VirtIOBalloonFpb *fpb)
{
    if (fpb->slot) {
        virtqueue_detach_element(fpb->vq, fpb->slot, 0);
        g_free(fpb->slot);
        fpb->slot = NULL;
    }
}

/* Answer the held slot with a request for migration's current round. */
static void fpb_issue(VirtIOBalloonFpb *fpb)
{
    VirtQueueElement *slot = fpb->slot;
    uint8_t req[FPB_REQ_SIZE];

    fpb->cmd_id++;
    if (!fpb->cmd_id) {
        fpb->cmd_id = 1;        /* 0 is never a command id */
    }
    fpb->issued++;
    fpb->state = FPB_REQUESTED;
    /*
     * Let go of it before giving it back: if that reset the device, the
     * reset must not free it a second time.
     */
    fpb->slot = NULL;
    fpb_build_request(req, fpb->cmd_id, fpb->req_flags);
    iov_from_buf(slot->in_sg, slot->in_num, 0, req, sizeof(req));
    fpb_return_buffer(fpb, slot, sizeof(req));
    virtio_notify(VIRTIO_DEVICE(fpb_balloon(fpb)), fpb->vq);
    trace_virtio_balloon_fpb_request(fpb->cmd_id, fpb->round,
                                     fpb->req_flags);
}

/* The last chunk of the answer to cmd_id came. */
static void fpb_complete(VirtIOBalloonFpb *fpb)
{
    fpb->state = FPB_ANSWERED;
    free_page_hint_answered(&fpb->hint, fpb->round);
    trace_virtio_balloon_fpb_answered(fpb->cmd_id,
                                      fpb->hint.counters.latency_us);
}

/* Migration asks, with dirty tracking armed. */
static void fpb_request(FreePageHintSource *hint,
                        const FreePageHintRequest *req)
{
    VirtIOBalloonFpb *fpb = container_of(hint, VirtIOBalloonFpb, hint);

    fpb->round = req->round;
    fpb->req_flags = req->drop_cache ? FPB_REQ_F_DROP_CACHE : 0;
    fpb->state = FPB_WANT_SLOT;
    if (fpb->slot) {
        fpb_issue(fpb);
    }
}

static bool fpb_can_hint(FreePageHintSource *hint)
{
    VirtIOBalloonFpb *fpb = container_of(hint, VirtIOBalloonFpb, hint);
    VirtIOBalloon *s = fpb_balloon(fpb);

    /*
     * With page poisoning (or init_on_free) the guest relies on the
     * contents of its free pages, which a skipped page would not have on
     * the destination.
     */
    return virtio_balloon_fpb_enabled(s) &&
           !virtio_vdev_has_feature(VIRTIO_DEVICE(s),
                                    VIRTIO_BALLOON_F_PAGE_POISON);
}

/*
 * A QEMU that is not qemu-fph cannot load this device once its driver
 * negotiated the free page bitmap, and its own message does not say why.
 */
static const char *fpb_failure_hint(FreePageHintSource *hint)
{
    VirtIOBalloonFpb *fpb = container_of(hint, VirtIOBalloonFpb, hint);

    if (!virtio_balloon_fpb_enabled(fpb_balloon(fpb))) {
        return NULL;
    }
    return "migration failed; a destination other than qemu-fph cannot "
           "load virtio-balloon while its guest uses the free page bitmap: "
           "to migrate there, boot the guest with free-page-bitmap=off on "
           "the balloon, or with a 7.1 or older machine type";
}

/* From the migration thread: a chunk waits in the queue for this */
static void fpb_resume(FreePageHintSource *hint)
{
    VirtIOBalloonFpb *fpb = container_of(hint, VirtIOBalloonFpb, hint);

    qemu_bh_schedule(fpb->next_turn);
}

static const FreePageHintSourceOps fpb_hint_ops = {
    .can_hint = fpb_can_hint,
    .request = fpb_request,
    .failure_hint = fpb_failure_hint,
    .resume = fpb_resume,
};

/*
 * The request is written when the device gives the slot back, maybe much
 * later.  A slot outside guest RAM (MMIO, ROM) is mapped through a bounce
 * buffer, and giving it back would write to the device behind it, even to
 * this device's own registers: refuse it.  Given back with nothing
 * written, it writes nothing.
 */
static bool fpb_slot_in_guest_ram(VirtQueueElement *elem)
{
    ram_addr_t offset;
    unsigned int i;

    for (i = 0; i < elem->in_num; i++) {
        if (!qemu_ram_block_from_host(elem->in_sg[i].iov_base, false,
                                      &offset)) {
            return false;
        }
    }
    return true;
}

static void fpb_take_slot(VirtIOBalloonFpb *fpb, VirtQueueElement *elem)
{
    if (iov_size(elem->in_sg, elem->in_num) < FPB_REQ_SIZE) {
        fpb_bad_input(fpb, FPB_ERR_SLOT, 0);
        fpb_return_buffer(fpb, elem, 0);
        return;
    }
    if (!fpb_slot_in_guest_ram(elem)) {
        fpb_bad_input(fpb, FPB_ERR_SLOT_NOT_RAM, 0);
        fpb_return_buffer(fpb, elem, 0);
        return;
    }
    if (fpb->slot) {
        /* The driver posted a second one: give the older one back. */
        fpb_return_buffer(fpb, fpb->slot, 0);
    }
    fpb->slot = elem;
    if (fpb->state != FPB_WANT_SLOT) {
        return;
    }
    if (free_page_hint_round_is_current(fpb->round)) {
        fpb_issue(fpb);
    } else {
        fpb->state = FPB_IDLE;  /* the round ended while we waited */
    }
}

static bool fpb_check_run(uint64_t gpa, uint64_t len, void *opaque)
{
    return free_page_hint_is_guest_ram(gpa, len);
}

/*
 * Every set bit must be guest RAM.  A driver sends a window of one zone
 * at a time, so checking the span from the first to the last set bit
 * usually settles it at once; only a span with a hole is checked run by
 * run (clear bits may describe holes).
 */
static bool fpb_chunk_in_guest_ram(const FpbChunk *chunk)
{
    uint64_t gpa, len;

    if (!fpb_free_span(chunk, &gpa, &len) ||
        free_page_hint_is_guest_ram(gpa, len)) {
        return true;
    }
    return fpb_for_each_free_run(chunk, fpb_check_run, NULL);
}

static bool fpb_skip_run(uint64_t gpa, uint64_t len, void *opaque)
{
    free_page_hint_skip(opaque, gpa, len);
    return true;
}

/*
 * Apply a well-formed chunk of the answer to cmd_id, whole or not at all:
 * a driver that calls MMIO or ROM free has a broken map, so none of its
 * bits are trusted.  Bits of target pages go to migration as they are,
 * word by word; larger pages run by run.
 */
static void fpb_apply_chunk(VirtIOBalloonFpb *fpb, const FpbChunk *chunk,
                            FreePageHintBegin begin)
{
    uint64_t skipped = fpb->hint.counters.skipped_pages;

    if (begin != FREE_PAGE_HINT_GO) {
        return;                 /* the round ended: counted as stale */
    }
    if (!fpb_chunk_in_guest_ram(chunk)) {
        free_page_hint_end(&fpb->hint);
        fpb_bad_input(fpb, FPB_ERR_OUTSIDE_RAM, chunk->cmd_id);
        return;
    }
    if (chunk->page_size == qemu_target_page_size()) {
        free_page_hint_skip_bitmap(&fpb->hint,
                                   chunk->first_pfn * chunk->page_size,
                                   chunk->bitmap, chunk->nr_bits);
    } else {
        fpb_for_each_free_run(chunk, fpb_skip_run, &fpb->hint);
    }
    free_page_hint_end(&fpb->hint);
    trace_virtio_balloon_fpb_chunk(chunk->cmd_id, chunk->first_pfn,
                                   chunk->nr_bits,
                                   fpb->hint.counters.skipped_pages - skipped);
    if (chunk->flags & FPB_CHUNK_F_LAST) {
        fpb_complete(fpb);
    }
}

/*
 * Adds to *@bits how many bitmap bits it looked at.  Returns false, and
 * counts nothing, for a chunk of the request in flight that must wait
 * because migration is sending: the caller puts it back in the queue.
 */
static bool fpb_handle_chunk(VirtIOBalloonFpb *fpb, VirtQueueElement *elem,
                             uint64_t *bits)
{
    size_t len = iov_size(elem->out_sg, elem->out_num);
    FreePageHintBegin begin = FREE_PAGE_HINT_STALE;
    g_autofree uint8_t *buf = NULL;
    FpbError err = FPB_ERR_NR_BITS;
    FpbChunk chunk;

    if (len <= FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8) {
        buf = g_malloc(len);
        iov_to_buf(elem->out_sg, elem->out_num, 0, buf, len);
        err = fpb_parse_chunk(buf, len, qemu_target_page_size(), &chunk);
    }
    if (err == FPB_OK && chunk.cmd_id == fpb->cmd_id &&
        fpb->state == FPB_REQUESTED) {
        begin = free_page_hint_try_begin(&fpb->hint, fpb->round);
        if (begin == FREE_PAGE_HINT_BUSY) {
            return false;
        }
    }

    fpb->hint.counters.chunks++;
    if (err != FPB_OK) {
        fpb_bad_input(fpb, err, buf && len >= 4 ? ldl_le_p(buf) : 0);
        return true;
    }
    *bits += chunk.nr_bits;
    fpb->hint.counters.bitmap_bytes += chunk.nr_bits / 8;
    if (!fpb_id_was_issued(fpb->cmd_id, fpb->issued, chunk.cmd_id)) {
        fpb_bad_input(fpb, FPB_ERR_UNKNOWN_ID, chunk.cmd_id);
        return true;
    }

    switch (chunk.cmd_id == fpb->cmd_id ? fpb->state : FPB_IDLE) {
    case FPB_REQUESTED:
        fpb_apply_chunk(fpb, &chunk, begin);
        break;
    case FPB_ANSWERED:
        if (free_page_hint_round_is_current(fpb->round)) {
            fpb_bad_input(fpb, FPB_ERR_AFTER_LAST, chunk.cmd_id);
            break;
        }
        /* fall through: an answer that crossed the round's end */
    default:
        /* An earlier request's, or forgotten by a reset: never applied. */
        fpb->hint.counters.stale_chunks++;
        trace_virtio_balloon_fpb_stale(chunk.cmd_id, fpb->cmd_id);
        break;
    }
    return true;
}

/*
 * Bitmap bits looked at in one turn of the main loop, with the BQL held:
 * a full chunk of one-page runs takes under a millisecond here word by
 * word, about 50 ms run by run (pages larger than the target's).  A
 * guest that keeps the queue full then shares the main loop (monitor,
 * migrate_cancel) instead of holding it.
 */
#define FPB_BITS_PER_TURN FPB_MAX_CHUNK_BITS

static void fpb_handle_queue(VirtIODevice *vdev, VirtQueue *vq)
{
    VirtIOBalloonFpb *fpb = &VIRTIO_BALLOON(vdev)->fpb;
    int64_t start = qemu_clock_get_us(QEMU_CLOCK_REALTIME);
    VirtQueueElement *elem;
    uint64_t bits = 0;
    bool waits = false;

    while (bits < FPB_BITS_PER_TURN &&
           (elem = virtqueue_pop(vq, sizeof(VirtQueueElement)))) {
        bits += 64;             /* even an empty message costs something */
        if (elem->out_num && elem->in_num) {
            fpb_bad_input(fpb, FPB_ERR_DIRECTION, 0);
        } else if (elem->in_num) {
            fpb_take_slot(fpb, elem);
            continue;
        } else if (!fpb_handle_chunk(fpb, elem, &bits)) {
            /* Migration resumes the queue once it lets go of its bitmap */
            virtqueue_unpop(vq, elem, 0);
            g_free(elem);
            waits = true;
            break;
        }
        fpb_return_buffer(fpb, elem, 0);
    }
    if (bits >= FPB_BITS_PER_TURN && !waits) {
        qemu_bh_schedule(fpb->next_turn);
    }
    virtio_notify(vdev, vq);
    fpb->hint.counters.longest_turn_us =
        MAX(fpb->hint.counters.longest_turn_us,
            (uint64_t)(qemu_clock_get_us(QEMU_CLOCK_REALTIME) - start));
}

static void fpb_drain(VirtIOBalloon *s)
{
    if (s->fpb.vq && virtio_queue_ready(s->fpb.vq)) {
        fpb_handle_queue(VIRTIO_DEVICE(s), s->fpb.vq);
    }
}

static void fpb_next_turn(void *opaque)
{
    fpb_drain(opaque);
}

static void fpb_vm_state_change(void *opaque, bool running, RunState state)
{
    VirtIOBalloon *s = opaque;

    if (running && s->fpb.drain_on_run) {
        s->fpb.drain_on_run = false;
        fpb_drain(s);
    }
}

void virtio_balloon_fpb_realize(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    fpb->vq = virtio_add_queue(VIRTIO_DEVICE(s), FPB_QUEUE_SIZE,
                               fpb_handle_queue);
    fpb->vm_state = qemu_add_vm_change_state_handler(fpb_vm_state_change, s);
    fpb->next_turn = qemu_bh_new_guarded(fpb_next_turn, s,
                                         &DEVICE(s)->mem_reentrancy_guard);
    free_page_hint_add_source(&fpb->hint, &fpb_hint_ops);
}

void virtio_balloon_fpb_unrealize(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (!fpb->vq) {
        return;
    }
    free_page_hint_remove_source(&fpb->hint);
    qemu_del_vm_change_state_handler(fpb->vm_state);
    qemu_bh_delete(fpb->next_turn);
    fpb_drop_slot(fpb);
    virtio_delete_queue(fpb->vq);
    fpb->vq = NULL;
}

void virtio_balloon_fpb_reset(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (!fpb->vq) {
        return;                 /* not offered: nothing was set up */
    }
    fpb_drop_slot(fpb);
    /* Chunks of the request in flight are now stale. */
    fpb->state = FPB_IDLE;
}

/*
 * Queue indices follow the negotiated features (the Linux driver's rule),
 * but QEMU creates its queues from the offered ones: so every feature that
 * adds a queue before ours must be negotiated with it.
 */
int virtio_balloon_fpb_validate_features(VirtIOBalloon *s)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    static const unsigned int before_ours[] = {
        VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_FREE_PAGE_HINT,
        VIRTIO_BALLOON_F_REPORTING,
    };
    size_t i;

    if (!virtio_vdev_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_BITMAP)) {
        return 0;
    }
    for (i = 0; i < ARRAY_SIZE(before_ours); i++) {
        if (virtio_has_feature(vdev->host_features, before_ours[i]) &&
            !virtio_vdev_has_feature(vdev, before_ours[i])) {
            error_report("virtio-balloon: the driver negotiated the free "
                         "page bitmap (feature %d) without feature %u; its "
                         "queue index would not match",
                         VIRTIO_BALLOON_F_FREE_PAGE_BITMAP, before_ours[i]);
            return -EINVAL;
        }
    }
    return 0;
}

static int fpb_pre_save(void *opaque)
{
    VirtIOBalloon *s = opaque;

    s->fpb.slot_held = s->fpb.slot != NULL;
    return 0;
}

static int fpb_post_load(void *opaque, int version_id)
{
    VirtIOBalloon *s = opaque;

    /* No migration runs here yet: nothing is outstanding. */
    s->fpb.state = FPB_IDLE;
    s->fpb.round = 0;
    /*
     * Chunks the source left queued are consumed when the VM runs: the
     * queue is not fully loaded yet.
     */
    s->fpb.drain_on_run = true;
    return 0;
}

/*
 * The driver's request buffer, when the device holds it, travels as a
 * whole element: other buffers may have been taken and given back after
 * it, so it is not simply the last one taken from the queue.
 */
static int fpb_get_slot(QEMUFile *f, void *pv, size_t size,
                        const VMStateField *field)
{
    VirtIOBalloon *s = container_of(pv, VirtIOBalloon, fpb.slot);

    s->fpb.slot = qemu_get_virtqueue_element(VIRTIO_DEVICE(s), f,
                                             sizeof(VirtQueueElement));
    return s->fpb.slot ? 0 : -EINVAL;
}

static int fpb_put_slot(QEMUFile *f, void *pv, size_t size,
                        const VMStateField *field, JSONWriter *vmdesc)
{
    VirtIOBalloon *s = container_of(pv, VirtIOBalloon, fpb.slot);

    qemu_put_virtqueue_element(VIRTIO_DEVICE(s), f, s->fpb.slot);
    return 0;
}

static const VMStateInfo fpb_slot_info = {
    .name = "virtio-balloon-fpb-slot",
    .get = fpb_get_slot,
    .put = fpb_put_slot,
};

static bool fpb_slot_exists(void *opaque, int version_id)
{
    VirtIOBalloon *s = opaque;

    return s->fpb.slot_held;
}

static bool fpb_vmstate_needed(void *opaque)
{
    return virtio_balloon_fpb_enabled(opaque);
}

const VMStateDescription vmstate_virtio_balloon_fpb = {
    .name = "virtio-balloon-device/free-page-bitmap",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = fpb_vmstate_needed,
    .pre_save = fpb_pre_save,
    .post_load = fpb_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32(fpb.cmd_id, VirtIOBalloon),
        VMSTATE_UINT64(fpb.issued, VirtIOBalloon),
        VMSTATE_BOOL(fpb.slot_held, VirtIOBalloon),
        {
            .name = "fpb.slot",
            .info = &fpb_slot_info,
            .field_exists = fpb_slot_exists,
            .size = sizeof(VirtQueueElement *),
            .flags = VMS_SINGLE,
            .offset = offsetof(VirtIOBalloon, fpb.slot),
        },
        VMSTATE_END_OF_LIST()
    }
};

void virtio_balloon_fpb_instance_init(VirtIOBalloon *s)
{
    FreePageHintCounters *c = &s->fpb.hint.counters;
    const struct {
        const char *name;
        uint64_t *counter;
    } counters[] = {
        { "free-page-bitmap-requests", &c->requests },
        { "free-page-bitmap-answered", &c->answered },
        { "free-page-bitmap-chunks", &c->chunks },
        { "free-page-bitmap-stale-chunks", &c->stale_chunks },
        { "free-page-bitmap-bad-input", &c->bad_input },
        { "free-page-bitmap-bytes", &c->bitmap_bytes },
        { "free-page-bitmap-pages-skipped", &c->skipped_pages },
        { "free-page-bitmap-latency-us", &c->latency_us },
        { "free-page-bitmap-longest-turn-us", &c->longest_turn_us },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(counters); i++) {
        object_property_add_uint64_ptr(OBJECT(s), counters[i].name,
                                       counters[i].counter,
                                       OBJ_PROP_FLAG_READ);
    }
}
