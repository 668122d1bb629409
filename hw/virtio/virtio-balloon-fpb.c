/*
 * virtio-balloon free page bitmap (qemu-fph).
 *
 * After every dirty bitmap sync of a precopy migration, the device asks the
 * guest for a bitmap of its free pages and clears the reported pages from
 * the migration bitmap when the answer comes, in the main loop; migration
 * never waits for it.  Correctness rests on two points, explained in
 * docs/free-page-hinting.rst: dirty tracking is armed for all of RAM before
 * the request is issued, and a request's answers are dropped as stale once
 * the next sync has begun.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "sysemu/runstate.h"
#include "qemu/timer.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-balloon.h"
#include "migration/misc.h"
#include "migration/migration.h"
#include "migration/vmstate.h"
#include "trace.h"

/* Enough for a driver that keeps one request buffer and a few chunks. */
#define FPB_QUEUE_SIZE 64

/* Bad input of one class is reported this many times, then counted only. */
#define FPB_REPORT_LIMIT 10

static const char *const fpb_bad_names[FPB_BAD__MAX - FPB_ERR__MAX] = {
    [FPB_BAD_UNKNOWN_ID - FPB_ERR__MAX] = "command id never issued",
    [FPB_BAD_AFTER_LAST - FPB_ERR__MAX] = "chunk after the last one",
    [FPB_BAD_SLOT - FPB_ERR__MAX] = "request buffer too small",
    [FPB_BAD_DIRECTION - FPB_ERR__MAX] = "buffer both readable and writable",
};

/* @cls: an FpbError of the message parser, or an FpbBadInput */
static const char *fpb_bad_str(unsigned int cls)
{
    return cls < FPB_ERR__MAX ? fpb_error_str(cls)
                              : fpb_bad_names[cls - FPB_ERR__MAX];
}

static void fpb_bad_input(VirtIOBalloonFpb *fpb, unsigned int cls,
                          uint32_t cmd_id)
{
    fpb->bad_input++;
    trace_virtio_balloon_fpb_bad_input(fpb_bad_str(cls), cmd_id);
    if (fpb->bad_reported[cls] < FPB_REPORT_LIMIT) {
        fpb->bad_reported[cls]++;
        warn_report("virtio-balloon: free page bitmap from the guest "
                    "ignored: %s (command id %u)%s", fpb_bad_str(cls), cmd_id,
                    fpb->bad_reported[cls] == FPB_REPORT_LIMIT ?
                    "; further reports of this kind are suppressed" : "");
    }
}

bool virtio_balloon_fpb_enabled(VirtIOBalloon *s)
{
    return virtio_vdev_has_feature(VIRTIO_DEVICE(s),
                                   VIRTIO_BALLOON_F_FREE_PAGE_BITMAP);
}

typedef struct FpbRangeCollector {
    VirtIOBalloonFpb *fpb;
    const MemoryRegion *ram;
} FpbRangeCollector;

static bool fpb_collect_range(Int128 start, Int128 len,
                              const MemoryRegion *mr,
                              hwaddr offset_in_region, void *opaque)
{
    FpbRangeCollector *c = opaque;
    VirtIOBalloonFpb *fpb = c->fpb;

    if (mr != c->ram) {
        return false;
    }
    if (fpb->nr_ranges == FPB_MAX_RAM_RANGES) {
        /* Fewer ranges only means fewer pages the guest may report. */
        return true;
    }
    fpb->ranges[fpb->nr_ranges++] = (FpbRamRange) {
        .gpa = int128_get64(start),
        .size = int128_get64(len),
        .offset = offset_in_region,
    };
    return false;
}

/*
 * Where guest system RAM is mapped, so that a bitmap can never make
 * migration skip video RAM, ROMs or anything else that is not it.
 */
static void fpb_collect_ram_ranges(VirtIOBalloonFpb *fpb)
{
    MachineState *ms = MACHINE(qdev_get_machine());
    FpbRangeCollector c = { .fpb = fpb, .ram = ms->ram };

    fpb->nr_ranges = 0;
    if (!ms->ram) {
        return;
    }
    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(address_space_to_flatview(
                                    &address_space_memory),
                                fpb_collect_range, &c);
    }
}

/*
 * State changes wake the migration thread, which may be waiting for an
 * answer (free-page-hint-wait).
 */
static void fpb_set_state(VirtIOBalloonFpb *fpb, FpbRequestState state)
{
    qemu_mutex_lock(&fpb->wait_lock);
    fpb->state = state;
    qemu_cond_broadcast(&fpb->wait_cond);
    qemu_mutex_unlock(&fpb->wait_lock);
}

/* Answer the driver's posted buffer with a request. */
static void fpb_issue_request(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    uint8_t req[FPB_REQ_SIZE];

    fpb->request_pending = false;
    fpb->cmd_id++;
    if (!fpb->cmd_id) {
        fpb->cmd_id = 1;        /* 0 is never a command id */
    }
    fpb_collect_ram_ranges(fpb);
    fpb_build_request(req, fpb->cmd_id, 0);
    iov_from_buf(fpb->slot->in_sg, fpb->slot->in_num, 0, req, sizeof(req));
    virtqueue_push(fpb->vq, fpb->slot, sizeof(req));
    g_free(fpb->slot);
    fpb->slot = NULL;
    fpb_set_state(fpb, FPB_S_REQUESTED);
    fpb->request_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    fpb->requests++;
    fpb->rounds++;
    virtio_notify(vdev, fpb->vq);
    trace_virtio_balloon_fpb_request(fpb->cmd_id, fpb->nr_ranges);
}

static void fpb_take_slot(VirtIOBalloon *s, VirtQueueElement *elem)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (iov_size(elem->in_sg, elem->in_num) < FPB_REQ_SIZE) {
        fpb_bad_input(fpb, FPB_BAD_SLOT, 0);
        virtqueue_push(fpb->vq, elem, 0);
        g_free(elem);
        return;
    }
    if (fpb->slot) {
        /* The driver posted a second one: give the older one back. */
        virtqueue_push(fpb->vq, fpb->slot, 0);
        g_free(fpb->slot);
    }
    fpb->slot = elem;
    if (fpb->request_pending) {
        fpb_issue_request(s);
    }
}

/* Clear one run of free pages from the migration bitmap. */
static void fpb_skip_run(uint64_t offset, uint64_t len, void *opaque)
{
    VirtIOBalloon *s = opaque;
    MachineState *ms = MACHINE(qdev_get_machine());
    int page_bits = qemu_target_page_bits();

    s->fpb.free_pages_skipped +=
        ram_skip_free_pages(ms->ram->ram_block, offset >> page_bits,
                            len >> page_bits);
}

/* Is @id one this device issued, now or earlier (ids wrap, skipping 0)? */
static bool fpb_id_was_issued(VirtIOBalloonFpb *fpb, uint32_t id)
{
    return id && fpb->requests &&
           (uint32_t)(fpb->cmd_id - id) < MIN(fpb->requests, UINT32_MAX);
}

static void fpb_handle_chunk(VirtIOBalloon *s, VirtQueueElement *elem)
{
    VirtIOBalloonFpb *fpb = &s->fpb;
    size_t len = iov_size(elem->out_sg, elem->out_num);
    g_autofree uint8_t *buf = NULL;
    FpbChunk chunk;
    FpbError err;
    uint64_t free_bytes;

    fpb->chunks++;
    if (len > FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8) {
        fpb_bad_input(fpb, FPB_ERR_NR_BITS, 0);
        return;
    }
    buf = g_malloc(len);
    iov_to_buf(elem->out_sg, elem->out_num, 0, buf, len);
    err = fpb_parse_chunk(buf, len, qemu_target_page_size(), &chunk);
    if (err != FPB_OK) {
        fpb_bad_input(fpb, err, len >= 4 ? ldl_le_p(buf) : 0);
        return;
    }
    fpb->bitmap_bytes += chunk.nr_bits / 8;

    if (chunk.cmd_id != fpb->cmd_id || fpb->state == FPB_S_IDLE) {
        if (!fpb_id_was_issued(fpb, chunk.cmd_id)) {
            fpb_bad_input(fpb, FPB_BAD_UNKNOWN_ID, chunk.cmd_id);
        } else {
            /* An answer that crossed a sync: normal, and never applied. */
            fpb->stale_chunks++;
            trace_virtio_balloon_fpb_stale(chunk.cmd_id, fpb->cmd_id);
        }
        return;
    }
    if (fpb->state == FPB_S_ANSWERED) {
        fpb_bad_input(fpb, FPB_BAD_AFTER_LAST, chunk.cmd_id);
        return;
    }

    err = fpb_for_each_free_run(&chunk, fpb->ranges, fpb->nr_ranges,
                                fpb_skip_run, s, &free_bytes);
    if (err != FPB_OK) {
        fpb_bad_input(fpb, err, chunk.cmd_id);
        return;
    }
    trace_virtio_balloon_fpb_chunk(chunk.cmd_id, chunk.first_pfn,
                                   chunk.nr_bits, free_bytes);
    if (chunk.flags & FPB_CHUNK_F_LAST) {
        fpb_set_state(fpb, FPB_S_ANSWERED);
        fpb->answered++;
        fpb->last_latency_us = (qemu_clock_get_ns(QEMU_CLOCK_REALTIME) -
                                fpb->request_ns) / SCALE_US;
        trace_virtio_balloon_fpb_answered(chunk.cmd_id,
                                          fpb->last_latency_us);
    }
}

static void fpb_handle_queue(VirtIODevice *vdev, VirtQueue *vq)
{
    VirtIOBalloon *s = VIRTIO_BALLOON(vdev);
    VirtQueueElement *elem;

    while ((elem = virtqueue_pop(vq, sizeof(VirtQueueElement)))) {
        if (elem->out_num && elem->in_num) {
            fpb_bad_input(&s->fpb, FPB_BAD_DIRECTION, 0);
        } else if (elem->in_num) {
            fpb_take_slot(s, elem);
            continue;
        } else {
            fpb_handle_chunk(s, elem);
        }
        virtqueue_push(vq, elem, 0);
        g_free(elem);
    }
    virtio_notify(vdev, vq);
}

static void fpb_drain(void *opaque)
{
    VirtIOBalloon *s = opaque;

    if (s->fpb.vq && virtio_queue_ready(s->fpb.vq)) {
        fpb_handle_queue(VIRTIO_DEVICE(s), s->fpb.vq);
    }
}

/* Answers to the current request are not applied any more. */
static void fpb_retire(VirtIOBalloonFpb *fpb)
{
    if (fpb->state == FPB_S_REQUESTED || fpb->request_pending) {
        trace_virtio_balloon_fpb_retire(fpb->cmd_id);
    }
    fpb->request_pending = false;
    fpb_set_state(fpb, FPB_S_IDLE);
}

static int fpb_precopy_notify(NotifierWithReturn *n, void *data)
{
    VirtIOBalloonFpb *fpb = container_of(n, VirtIOBalloonFpb,
                                         precopy_notifier);
    VirtIOBalloon *s = container_of(fpb, VirtIOBalloon, fpb);
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    PrecopyNotifyData *pnd = data;

    /*
     * A page skipped here would stall a postcopy fault on the destination
     * until the end: no hints with postcopy, as for stock hinting.  With
     * page poisoning (or init_on_free) the guest relies on the contents of
     * its free pages, which a skipped page would not have there.
     */
    if (!virtio_balloon_fpb_enabled(s) || migrate_postcopy_ram() ||
        virtio_vdev_has_feature(vdev, VIRTIO_BALLOON_F_PAGE_POISON)) {
        return 0;
    }

    switch (pnd->reason) {
    case PRECOPY_NOTIFY_BEFORE_BITMAP_SYNC:
        /*
         * The sync brings in writes made since the request; a hint applied
         * after it could clear them.  So its answers become stale now.
         */
        fpb_retire(fpb);
        break;
    case PRECOPY_NOTIFY_AFTER_BITMAP_SYNC:
        if (!vdev->vm_running ||
            (fpb->rounds && !migrate_free_page_hint_repeat())) {
            break;
        }
        /*
         * Arm dirty tracking for all of RAM before asking: every write the
         * guest makes after its snapshot must reach the next sync.
         */
        ram_rearm_dirty_tracking();
        fpb->request_pending = true;
        fpb_drain(s);
        if (fpb->slot) {
            fpb_issue_request(s);
        }
        break;
    case PRECOPY_NOTIFY_COMPLETE:
    case PRECOPY_NOTIFY_CLEANUP:
        /*
         * Rounds count per migration.  Reset here, not at SETUP, which
         * comes after the first sync and its request.
         */
        fpb_retire(fpb);
        fpb->rounds = 0;
        break;
    default:
        break;
    }
    return 0;
}

/* Called by migration, in its thread and without the BQL. */
static void fpb_wait_for_answer(void *opaque, uint32_t ms)
{
    VirtIOBalloonFpb *fpb = &VIRTIO_BALLOON(opaque)->fpb;
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + ms;
    int64_t now;

    qemu_mutex_lock(&fpb->wait_lock);
    while (fpb->state == FPB_S_REQUESTED &&
           (now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME)) < deadline) {
        qemu_cond_timedwait(&fpb->wait_cond, &fpb->wait_lock,
                            deadline - now);
    }
    trace_virtio_balloon_fpb_waited(fpb->cmd_id, fpb->state);
    qemu_mutex_unlock(&fpb->wait_lock);
}

static bool fpb_query(void *opaque, FreePageHintStats *stats)
{
    VirtIOBalloon *s = opaque;
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (!virtio_balloon_fpb_enabled(s)) {
        return false;
    }
    *stats = (FreePageHintStats) {
        .requests = fpb->requests,
        .answered = fpb->answered,
        .stale_chunks = fpb->stale_chunks,
        .bad_input = fpb->bad_input,
        .bitmap_bytes = fpb->bitmap_bytes,
        .skipped_pages = fpb->free_pages_skipped,
        .latency = fpb->last_latency_us,
    };
    return true;
}

static const FreePageHintOps fpb_ops = {
    .query = fpb_query,
    .wait = fpb_wait_for_answer,
};

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
    fpb->precopy_notifier.notify = fpb_precopy_notify;
    precopy_add_notifier(&fpb->precopy_notifier);
    qemu_mutex_init(&fpb->wait_lock);
    qemu_cond_init(&fpb->wait_cond);
    ram_set_free_page_hint_ops(&fpb_ops, s);
}

void virtio_balloon_fpb_unrealize(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (!fpb->vq) {
        return;
    }
    ram_set_free_page_hint_ops(NULL, NULL);
    precopy_remove_notifier(&fpb->precopy_notifier);
    qemu_del_vm_change_state_handler(fpb->vm_state);
    g_free(fpb->slot);
    fpb->slot = NULL;
    virtio_delete_queue(fpb->vq);
    fpb->vq = NULL;
    qemu_cond_destroy(&fpb->wait_cond);
    qemu_mutex_destroy(&fpb->wait_lock);
}

void virtio_balloon_fpb_reset(VirtIOBalloon *s)
{
    VirtIOBalloonFpb *fpb = &s->fpb;

    if (!fpb->vq) {
        return;                 /* not offered: nothing was set up */
    }
    /* The queue is reset too: the slot is simply forgotten. */
    g_free(fpb->slot);
    fpb->slot = NULL;
    fpb_retire(fpb);
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
    s->fpb.state = FPB_S_IDLE;
    s->fpb.request_pending = false;
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
        VMSTATE_UINT64(fpb.requests, VirtIOBalloon),
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
    Object *obj = OBJECT(s);
    VirtIOBalloonFpb *fpb = &s->fpb;
    static const struct {
        const char *name;
        size_t offset;
    } counters[] = {
        { "free-page-bitmap-requests",
          offsetof(VirtIOBalloonFpb, requests) },
        { "free-page-bitmap-answered",
          offsetof(VirtIOBalloonFpb, answered) },
        { "free-page-bitmap-stale-chunks",
          offsetof(VirtIOBalloonFpb, stale_chunks) },
        { "free-page-bitmap-chunks", offsetof(VirtIOBalloonFpb, chunks) },
        { "free-page-bitmap-bytes", offsetof(VirtIOBalloonFpb, bitmap_bytes) },
        { "free-page-bitmap-pages-skipped",
          offsetof(VirtIOBalloonFpb, free_pages_skipped) },
        { "free-page-bitmap-bad-input",
          offsetof(VirtIOBalloonFpb, bad_input) },
        { "free-page-bitmap-latency-us",
          offsetof(VirtIOBalloonFpb, last_latency_us) },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(counters); i++) {
        object_property_add_uint64_ptr(obj, counters[i].name,
                                       (uint64_t *)((char *)fpb +
                                                    counters[i].offset),
                                       OBJ_PROP_FLAG_READ);
    }
}
