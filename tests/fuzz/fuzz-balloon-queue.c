/*
 * libFuzzer target: the balloon's free page bitmap queue handler
 * (hw/virtio/virtio-balloon-fpb.c), built without QEMU against the
 * stand-ins in tests/fuzz/fake-qemu/.  This file plays the virtqueue, the
 * guest driver and migration's side (migration/free-page-hint.c, with
 * migration/guest-ram-map.c for the memory map), and checks every outcome
 * against a model of the protocol in docs/free-page-hinting.rst:
 *
 * - each chunk is applied whole or not at all, exactly when its command id
 *   is that of the request in flight, the round is current, no last chunk
 *   came before and every set bit is guest RAM; otherwise it is counted as
 *   stale or as bad input, as the model says;
 * - ranges are skipped only between free_page_hint_try_begin() and
 *   _end(), in the current round, and only guest RAM;
 * - a chunk that finds migration's bitmap busy goes back to the queue
 *   with nothing counted, and is taken again once migration resumes the
 *   device;
 * - a request is issued only in a current round, into a buffer of guest
 *   RAM, with the next command id;
 * - every element taken from the queue is given back, detached or put
 *   back once; none is left in the queue without a next turn scheduled
 *   or a resume from migration due.
 *
 * Input: a features byte (see set_features()), a guest RAM table (see
 * fuzz_ram_map()), then operations, one byte each and their arguments,
 * until the input ends.  tests/fuzz/make-corpus.py writes the seeds.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/error-report.h"
#include "qom/object.h"
#include "exec/cpu-common.h"
#include "exec/target_page.h"
#include "sysemu/runstate.h"
#include "hw/virtio/virtio-balloon.h"
#include "fuzz-util.h"

#define QUEUE_SIZE 64           /* the device's, FPB_QUEUE_SIZE */
#define MAX_SG 4
#define FPB_FEATURE (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_BITMAP)

/* A buffer the driver posts: readable (out) or writable (in) parts */
typedef struct Desc {
    struct iovec out[MAX_SG], in[MAX_SG];
    unsigned int out_num, in_num;
    bool in_ram[MAX_SG];        /* in[i] lies in guest RAM, not MMIO */
} Desc;

/* What the model expects of a chunk the device has taken */
typedef enum Outcome {
    OUT_APPLIED,
    OUT_STALE,
    OUT_BAD,
    OUT_WAIT,                   /* put back: migration is sending */
} Outcome;

typedef struct Taken {
    const VirtQueueElement *elem;
    Desc desc;
    bool chunk;
    Outcome outcome;
    uint64_t free_bytes;        /* what an applied chunk skips */
    bool last;
    FreePageHintCounters before;
} Taken;

static struct {
    VirtIOBalloon *s;
    FuzzRamMap map;

    /* the queue */
    VirtIOHandleOutput handler;
    bool queue_deleted;
    Desc pending[QUEUE_SIZE];
    unsigned int npending;
    Taken taken[QUEUE_SIZE];
    unsigned int ntaken;
    unsigned int popped;

    /* main loop */
    QEMUBHFunc *bh_cb;
    void *bh_opaque;
    bool bh_scheduled, bh_deleted;
    VMChangeStateHandler *vm_cb;
    unsigned int warnings;

    /* migration */
    FreePageHintSource *src;
    FreePageHintRound round;
    bool round_open;
    bool lock_fails;            /* ram_hint_lock() fails: no bitmap */
    bool busy;                  /* the migration thread holds the bitmap */
    bool resume_due;            /* the source was told BUSY */
    bool in_report;
    uint64_t skipped_bytes;

    /* the driver's view of the request in flight */
    uint32_t last_id;
    uint64_t issued;
    uint32_t req_id;
    FreePageHintRound req_round;
    bool req_live;              /* not reset, asked again or loaded since */
    bool req_answered;
} h;

/* Stand-ins for QEMU */

void error_report(const char *fmt, ...)
{
}

void warn_report(const char *fmt, ...)
{
    h.warnings++;
}

void object_property_add_uint64_ptr(Object *obj, const char *name,
                                    const uint64_t *v, int flags)
{
}

size_t qemu_target_page_size(void)
{
    return 4096;
}

QEMUBH *qemu_bh_new_guarded(QEMUBHFunc *cb, void *opaque,
                            MemReentrancyGuard *guard)
{
    h.bh_cb = cb;
    h.bh_opaque = opaque;
    h.bh_deleted = false;
    return (QEMUBH *)&h.bh_cb;
}

void qemu_bh_schedule(QEMUBH *bh)
{
    FUZZ_CHECK(!h.bh_deleted);
    h.bh_scheduled = true;
}

void qemu_bh_delete(QEMUBH *bh)
{
    h.bh_deleted = true;
    h.bh_scheduled = false;
}

VMChangeStateEntry *qemu_add_vm_change_state_handler(VMChangeStateHandler *cb,
                                                     void *opaque)
{
    h.vm_cb = cb;
    return (VMChangeStateEntry *)&h.vm_cb;
}

void qemu_del_vm_change_state_handler(VMChangeStateEntry *e)
{
    h.vm_cb = NULL;
}

/* The in buffers the fuzzer put in guest RAM; the others are MMIO. */
static bool in_guest_ram(const void *ptr)
{
    unsigned int i, j;

    for (i = 0; i < h.ntaken; i++) {
        for (j = 0; j < h.taken[i].desc.in_num; j++) {
            if (h.taken[i].desc.in[j].iov_base == ptr) {
                return h.taken[i].desc.in_ram[j];
            }
        }
    }
    FUZZ_CHECK(!"a pointer into no buffer the device holds");
    return false;
}

RAMBlock *qemu_ram_block_from_host(void *ptr, bool round_offset,
                                   ram_addr_t *offset)
{
    *offset = 0;
    return in_guest_ram(ptr) ? (RAMBlock *)&h.map : NULL;
}

size_t iov_size(const struct iovec *iov, const unsigned int iov_cnt)
{
    size_t len = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt; i++) {
        len += iov[i].iov_len;
    }
    return len;
}

static size_t iov_copy(const struct iovec *iov, unsigned int iov_cnt,
                       size_t offset, uint8_t *buf, size_t bytes, bool to)
{
    size_t done = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt && done < bytes; i++) {
        size_t len;

        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        len = MIN(iov[i].iov_len - offset, bytes - done);
        if (to) {
            /* The device writes only into guest RAM, never MMIO. */
            FUZZ_CHECK(in_guest_ram(iov[i].iov_base));
            memcpy((uint8_t *)iov[i].iov_base + offset, buf + done, len);
        } else {
            memcpy(buf + done, (uint8_t *)iov[i].iov_base + offset, len);
        }
        done += len;
        offset = 0;
    }
    return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned int iov_cnt,
                    size_t offset, const void *buf, size_t bytes)
{
    return iov_copy(iov, iov_cnt, offset, (uint8_t *)buf, bytes, true);
}

size_t iov_to_buf(const struct iovec *iov, const unsigned int iov_cnt,
                  size_t offset, void *buf, size_t bytes)
{
    return iov_copy(iov, iov_cnt, offset, buf, bytes, false);
}

VirtQueue *virtio_add_queue(VirtIODevice *vdev, int queue_size,
                            VirtIOHandleOutput handle_output)
{
    FUZZ_CHECK(queue_size == QUEUE_SIZE);
    h.handler = handle_output;
    h.queue_deleted = false;
    return (VirtQueue *)&h.handler;
}

void virtio_delete_queue(VirtQueue *vq)
{
    h.queue_deleted = true;
}

int virtio_queue_ready(VirtQueue *vq)
{
    return !h.queue_deleted;
}

void virtio_notify(VirtIODevice *vdev, VirtQueue *vq)
{
    FUZZ_CHECK(!h.queue_deleted);
}

void *qemu_get_virtqueue_element(VirtIODevice *vdev, QEMUFile *f, size_t sz)
{
    abort();                    /* the harness loads no stream */
}

void qemu_put_virtqueue_element(VirtIODevice *vdev, QEMUFile *f,
                                VirtQueueElement *elem)
{
    abort();
}

/* The model: what must become of the chunk the device takes now */

typedef struct RamCheck {
    bool in_ram;
} RamCheck;

static bool run_in_ram(uint64_t gpa, uint64_t len, void *opaque)
{
    RamCheck *c = opaque;

    c->in_ram &= fuzz_ram_covered(&h.map, gpa, len) == len;
    return true;
}

static bool round_current(FreePageHintRound r)
{
    return r && h.round_open && r == h.round;
}

/* The id that follows @id: ids wrap, skipping 0 */
static uint32_t next_id(uint32_t id)
{
    return id + 1 ? id + 1 : 1;
}

/* Was @id one of the last h.issued ids, counted without 0? */
static bool was_issued(uint32_t id)
{
    uint32_t back = h.last_id - id;

    if (!id || !h.issued) {
        return false;
    }
    if (id > h.last_id) {
        back--;                 /* the sequence skipped 0 in between */
    }
    return back < h.issued;
}

static void expect(Taken *t)
{
    size_t len = iov_size(t->desc.out, t->desc.out_num);
    g_autofree uint8_t *buf = g_malloc(len + 1);
    RamCheck ram = { true };
    FpbChunk chunk;
    uint32_t i;

    t->outcome = OUT_BAD;
    if (len > FPB_CHUNK_HEADER_SIZE + FPB_MAX_CHUNK_BITS / 8) {
        return;
    }
    iov_to_buf(t->desc.out, t->desc.out_num, 0, buf, len);
    if (fpb_parse_chunk(buf, len, 4096, &chunk) != FPB_OK ||
        !was_issued(chunk.cmd_id)) {
        return;
    }
    t->outcome = OUT_STALE;
    if (chunk.cmd_id != h.req_id || !h.req_live) {
        return;
    }
    if (h.req_answered) {
        if (round_current(h.req_round)) {
            t->outcome = OUT_BAD;       /* after the last chunk */
        }
        return;
    }
    if (!round_current(h.req_round) || h.lock_fails) {
        return;
    }
    if (h.busy) {
        t->outcome = OUT_WAIT;
        return;
    }
    fpb_for_each_free_run(&chunk, run_in_ram, &ram);
    if (!ram.in_ram) {
        t->outcome = OUT_BAD;
        return;
    }
    t->outcome = OUT_APPLIED;
    t->last = chunk.flags & FPB_CHUNK_F_LAST;
    for (i = 0; i < chunk.nr_bits / 64; i++) {
        t->free_bytes += (uint64_t)chunk.page_size *
                         __builtin_popcountll(ldq_le_p(chunk.bitmap + i * 8));
    }
}

void *virtqueue_pop(VirtQueue *vq, size_t sz)
{
    VirtQueueElement *elem;
    Taken *t;
    unsigned int i;

    FUZZ_CHECK(!h.queue_deleted && sz >= sizeof(VirtQueueElement));
    if (!h.npending) {
        return NULL;
    }
    FUZZ_CHECK(h.ntaken < QUEUE_SIZE);
    t = &h.taken[h.ntaken++];
    *t = (Taken) { .desc = h.pending[0] };
    h.npending--;
    memmove(h.pending, h.pending + 1, h.npending * sizeof(Desc));

    /* One allocation, as QEMU's virtqueue_alloc_element() makes it */
    elem = g_malloc0(sz + MAX_SG * 2 * (sizeof(hwaddr) +
                                        sizeof(struct iovec)));
    elem->index = h.popped++;
    elem->out_num = t->desc.out_num;
    elem->in_num = t->desc.in_num;
    elem->in_sg = (struct iovec *)((uint8_t *)elem + sz);
    elem->out_sg = elem->in_sg + MAX_SG;
    elem->in_addr = (hwaddr *)(elem->out_sg + MAX_SG);
    elem->out_addr = elem->in_addr + MAX_SG;
    for (i = 0; i < elem->in_num; i++) {
        elem->in_sg[i] = t->desc.in[i];
    }
    for (i = 0; i < elem->out_num; i++) {
        elem->out_sg[i] = t->desc.out[i];
    }
    t->elem = elem;
    t->chunk = t->desc.out_num && !t->desc.in_num;
    if (t->chunk) {
        expect(t);
    }
    t->before = h.src->counters;
    h.skipped_bytes = 0;
    return elem;
}

static void free_desc(Desc *d)
{
    unsigned int i;

    for (i = 0; i < d->out_num; i++) {
        g_free(d->out[i].iov_base);
    }
    for (i = 0; i < d->in_num; i++) {
        g_free(d->in[i].iov_base);
    }
}

/* The device is done with @elem: check what it did with it. */
static void give_back(const VirtQueueElement *elem, unsigned int len,
                      bool detached)
{
    FreePageHintCounters *now = &h.src->counters;
    Taken *t = NULL;
    unsigned int i;

    for (i = 0; i < h.ntaken; i++) {
        if (h.taken[i].elem == elem) {
            t = &h.taken[i];
        }
    }
    FUZZ_CHECK(t);              /* taken, and given back only once */
    FUZZ_CHECK(len <= iov_size(t->desc.in, t->desc.in_num));
    if (t->chunk) {
        FUZZ_CHECK(!detached && t->outcome != OUT_WAIT);
        FUZZ_CHECK(now->chunks == t->before.chunks + 1);
        FUZZ_CHECK(h.skipped_bytes ==
                   (t->outcome == OUT_APPLIED ? t->free_bytes : 0));
        FUZZ_CHECK(now->stale_chunks == t->before.stale_chunks +
                   (t->outcome == OUT_STALE));
        FUZZ_CHECK(now->bad_input == t->before.bad_input +
                   (t->outcome == OUT_BAD));
        FUZZ_CHECK(now->answered == t->before.answered +
                   (t->outcome == OUT_APPLIED && t->last));
        if (t->outcome == OUT_APPLIED && t->last) {
            h.req_answered = true;
        }
    } else if (len) {
        uint8_t req[FPB_REQ_SIZE];
        uint32_t cmd_id, flags;

        /* A request: the next id, in a current round, into guest RAM */
        FUZZ_CHECK(len == FPB_REQ_SIZE && !detached);
        FUZZ_CHECK(round_current(h.s->fpb.round));
        iov_to_buf(t->desc.in, t->desc.in_num, 0, req, sizeof(req));
        fpb_parse_request(req, &cmd_id, &flags);
        FUZZ_CHECK(cmd_id == next_id(h.last_id) && flags == 0);
        h.last_id = cmd_id;
        h.issued++;
        h.req_id = cmd_id;
        h.req_round = h.round;
        h.req_live = true;
        h.req_answered = false;
    }
    free_desc(&t->desc);
    *t = h.taken[--h.ntaken];
}

void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len)
{
    FUZZ_CHECK(!h.queue_deleted);
    give_back(elem, len, false);
}

void virtqueue_detach_element(VirtQueue *vq, const VirtQueueElement *elem,
                              unsigned int len)
{
    give_back(elem, len, true);
}

/* Only the element popped last, as QEMU rewinds the ring by one */
void virtqueue_unpop(VirtQueue *vq, const VirtQueueElement *elem,
                     unsigned int len)
{
    Taken *t = NULL;
    unsigned int i;

    for (i = 0; i < h.ntaken; i++) {
        if (h.taken[i].elem == elem) {
            t = &h.taken[i];
        }
    }
    FUZZ_CHECK(t && elem->index + 1 == h.popped && !len);
    FUZZ_CHECK(t->chunk && t->outcome == OUT_WAIT && h.resume_due);
    /* Nothing counted, nothing skipped */
    FUZZ_CHECK(!memcmp(&t->before, &h.src->counters,
                       sizeof(FreePageHintCounters)));
    FUZZ_CHECK(!h.skipped_bytes);
    FUZZ_CHECK(h.npending < QUEUE_SIZE);
    memmove(h.pending + 1, h.pending, h.npending * sizeof(Desc));
    h.pending[0] = t->desc;
    h.npending++;
    h.popped--;
    *t = h.taken[--h.ntaken];
}

/* Migration's side, as migration/free-page-hint.c behaves */

void free_page_hint_add_source(FreePageHintSource *src,
                               const FreePageHintSourceOps *ops)
{
    src->ops = ops;
    h.src = src;
}

void free_page_hint_remove_source(FreePageHintSource *src)
{
    FUZZ_CHECK(src == h.src && !h.in_report);
}

bool free_page_hint_round_is_current(FreePageHintRound r)
{
    return round_current(r);
}

FreePageHintBegin free_page_hint_try_begin(FreePageHintSource *src,
                                           FreePageHintRound r)
{
    FUZZ_CHECK(src == h.src && !h.in_report);
    if (!round_current(r) || h.lock_fails) {
        src->counters.stale_chunks++;
        return FREE_PAGE_HINT_STALE;
    }
    if (h.busy) {
        h.resume_due = true;
        return FREE_PAGE_HINT_BUSY;
    }
    h.in_report = true;
    return FREE_PAGE_HINT_GO;
}

/* Between two iterations, or when the round ends: as migration does */
static void resume_if_due(void)
{
    if (h.resume_due) {
        h.resume_due = false;
        h.src->ops->resume(h.src);
        FUZZ_CHECK(h.bh_scheduled);
    }
}

bool free_page_hint_is_guest_ram(uint64_t gpa, uint64_t len)
{
    FUZZ_CHECK(h.in_report && len);
    return guest_ram_covers(h.map.r, h.map.n, gpa, len);
}

static void skip_piece(const GuestRamRange *r, uint64_t offset,
                       uint64_t len, void *opaque)
{
    if (r->block) {
        h.src->counters.skipped_pages += len / 4096;
    }
}

void free_page_hint_skip(FreePageHintSource *src, uint64_t gpa, uint64_t len)
{
    /* Only guest RAM, in the round that asked, under the bitmap lock */
    FUZZ_CHECK(src == h.src && h.in_report && len);
    FUZZ_CHECK(fuzz_ram_covered(&h.map, gpa, len) == len);
    guest_ram_for_each_piece(h.map.r, h.map.n, gpa, len, skip_piece, src);
    h.skipped_bytes += len;
}

void free_page_hint_skip_bitmap(FreePageHintSource *src, uint64_t gpa,
                                const uint8_t *bitmap, uint64_t nr_pages)
{
    uint64_t i;

    /* Every set bit alone: guest RAM, and counted where it migrates */
    FUZZ_CHECK(src == h.src && h.in_report && nr_pages);
    for (i = 0; i < nr_pages; i++) {
        uint64_t page = gpa + i * 4096;

        if (!(bitmap[i / 8] >> (i % 8) & 1)) {
            continue;
        }
        FUZZ_CHECK(fuzz_ram_covered(&h.map, page, 4096) == 4096);
        guest_ram_for_each_piece(h.map.r, h.map.n, page, 4096, skip_piece,
                                 src);
        h.skipped_bytes += 4096;
    }
}

void free_page_hint_end(FreePageHintSource *src)
{
    FUZZ_CHECK(src == h.src && h.in_report);
    h.in_report = false;
}

void free_page_hint_answered(FreePageHintSource *src, FreePageHintRound r)
{
    FUZZ_CHECK(src == h.src && !h.in_report && round_current(r));
    src->counters.answered++;
}

/* The driver and the machine */

/*
 * Offered: stats, free page hint, the bitmap, reporting if bit 5.
 * Negotiated: bit 0 stats, 1 free page hint, 2 page poison, 3 reporting,
 * 4 the bitmap.  FEATURES_OK fails as the device says.
 */
static void set_features(uint8_t b)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(h.s);
    static const unsigned int bits[] = {
        VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_FREE_PAGE_HINT,
        VIRTIO_BALLOON_F_PAGE_POISON, VIRTIO_BALLOON_F_REPORTING,
        VIRTIO_BALLOON_F_FREE_PAGE_BITMAP,
    };
    bool offers_reporting = b & (1u << 5);
    bool missing = false;
    unsigned int i;

    vdev->host_features = (1ULL << VIRTIO_BALLOON_F_STATS_VQ) |
                          (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT) |
                          (1ULL << VIRTIO_BALLOON_F_PAGE_POISON) |
                          FPB_FEATURE;
    if (offers_reporting) {
        vdev->host_features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
    }
    vdev->guest_features = 0;
    for (i = 0; i < ARRAY_SIZE(bits); i++) {
        if (b & (1u << i)) {
            vdev->guest_features |= 1ULL << bits[i];
        }
    }
    vdev->guest_features &= vdev->host_features;
    if (vdev->guest_features & FPB_FEATURE) {
        missing = !(b & 1) || !(b & 2) || (offers_reporting && !(b & 8));
    }
    FUZZ_CHECK((virtio_balloon_fpb_validate_features(h.s) != 0) == missing);
    if (missing) {
        vdev->guest_features = 0;
    }
}

static void *buffer(FuzzInput *in, size_t len)
{
    uint8_t *p = g_malloc(len ? len : 1);

    fuzz_take(in, p, len);
    return p;
}

/* Split @len bytes of @data into @pieces readable parts of a Desc. */
static void out_parts(Desc *d, const uint8_t *data, size_t len,
                      unsigned int pieces, uint8_t cut)
{
    size_t at = 0;
    unsigned int i;

    pieces = MAX(1, MIN(pieces, MAX_SG));
    for (i = 0; i < pieces; i++) {
        size_t part = i + 1 == pieces ? len - at
                                      : MIN(len - at, (size_t)cut * (i + 1));

        d->out[i].iov_base = g_malloc(part ? part : 1);
        memcpy(d->out[i].iov_base, data + at, part);
        d->out[i].iov_len = part;
        at += part;
    }
    d->out_num = pieces;
}

static bool queue_full(void)
{
    return h.npending + h.ntaken >= QUEUE_SIZE;
}

/* A writable buffer: the request slot, maybe too small, maybe in MMIO */
static void op_slot(FuzzInput *in)
{
    uint8_t size = fuzz_u8(in), where = fuzz_u8(in);
    Desc *d = &h.pending[h.npending++];
    unsigned int i;

    *d = (Desc) { .in_num = 1 + (where & 1) };
    for (i = 0; i < d->in_num; i++) {
        size_t len = i ? size >> 4 : size & 15;

        d->in[i].iov_base = g_malloc0(len ? len : 1);
        d->in[i].iov_len = len;
        d->in_ram[i] = !(where & (2u << i));
    }
}

static uint32_t pick_id(FuzzInput *in)
{
    uint8_t how = fuzz_u8(in);

    switch (how & 3) {
    case 0:
        return h.last_id;
    case 1:
        return h.last_id - 1;
    case 2:
        return h.last_id + 1;
    default:
        return fuzz_u32(in);
    }
}

/*
 * A chunk built from a few choices (so most are well formed): where it
 * starts relative to a RAM range, its page size and bits, then damage to
 * its length or flags.
 */
static void op_chunk(FuzzInput *in, bool big)
{
    uint32_t cmd_id = pick_id(in);
    uint8_t shape = fuzz_u8(in), where = fuzz_u8(in);
    uint32_t page_size = 4096u << (fuzz_u8(in) % 10);
    uint64_t first_pfn;
    uint32_t nr_bits, flags = shape & 1 ? FPB_CHUNK_F_LAST : 0;
    size_t len;
    g_autofree uint8_t *buf = NULL;
    Desc *d;

    if (h.map.n && where < 0xf0) {
        const GuestRamRange *r = &h.map.r[where % h.map.n];

        first_pfn = r->gpa / page_size + (int8_t)fuzz_u8(in);
    } else {
        first_pfn = fuzz_u64(in);
    }
    nr_bits = fuzz_u8(in);
    if (big) {
        nr_bits = MIN(FPB_MAX_CHUNK_BITS, 64u << (nr_bits % 18));
    } else {
        nr_bits = 64 * (1 + nr_bits % 8);
    }
    if (shape & 2) {
        flags |= fuzz_u32(in);
    }
    if (shape & 4) {
        page_size = fuzz_u32(in);
    }
    len = FPB_CHUNK_HEADER_SIZE + nr_bits / 8;
    buf = g_malloc0(len + 8);
    fpb_build_chunk_header(buf, cmd_id, flags, first_pfn, page_size,
                           nr_bits);
    if (big) {
        /*
         * All free or all in use but for the first and the last word: few
         * runs, so that the fuzzer spends its time on the many inputs and
         * not on walking millions of runs of one.
         */
        memset(buf + FPB_CHUNK_HEADER_SIZE, fuzz_u8(in) & 1 ? 0xff : 0,
               nr_bits / 8);
        fuzz_take(in, buf + FPB_CHUNK_HEADER_SIZE, 8);
        fuzz_take(in, buf + len - 8, 8);
    } else {
        fuzz_take(in, buf + FPB_CHUNK_HEADER_SIZE, nr_bits / 8);
    }
    if (shape & 8) {
        stl_le_p(buf + 20, fuzz_u32(in));       /* nr_bits lies */
    }
    if (shape & 16) {
        len = (len + (int8_t)fuzz_u8(in)) % (len + 9);
    }
    d = &h.pending[h.npending++];
    *d = (Desc) { 0 };
    out_parts(d, buf, len, shape >> 5, fuzz_u8(in));
}

/* Raw bytes as a chunk, or a buffer both readable and writable */
static void op_raw(FuzzInput *in, bool mixed)
{
    size_t len = fuzz_u8(in);
    g_autofree uint8_t *buf = buffer(in, len);
    Desc *d = &h.pending[h.npending++];

    *d = (Desc) { 0 };
    out_parts(d, buf, len, 1 + len % 2, len / 3);
    if (mixed) {
        d->in[0].iov_base = g_malloc0(FPB_REQ_SIZE);
        d->in[0].iov_len = FPB_REQ_SIZE;
        d->in_ram[0] = true;
        d->in_num = 1;
    }
}

static void kick(void)
{
    FUZZ_CHECK(!h.in_report);
    h.handler(VIRTIO_DEVICE(h.s), (VirtQueue *)&h.handler);
    /* Nothing is left behind without a next turn */
    FUZZ_CHECK(!h.npending || h.bh_scheduled || h.resume_due);
}

static void start_round(void)
{
    h.round++;
    h.round_open = true;
    if (h.src->ops->can_hint(h.src)) {
        FreePageHintRequest req = { .round = h.round };

        h.src->counters.requests++;
        h.req_live = false;
        h.src->ops->request(h.src, &req);
    }
}

static void reset(void)
{
    unsigned int i;

    virtio_balloon_fpb_reset(h.s);
    /* The queue starts empty again; the slot, if held, was detached. */
    for (i = 0; i < h.npending; i++) {
        free_desc(&h.pending[i]);
    }
    h.npending = 0;
    FUZZ_CHECK(!h.s->fpb.slot && !h.ntaken);
    h.req_live = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size };
    unsigned int i;

    memset(&h, 0, sizeof(h));
    h.s = g_new0(VirtIOBalloon, 1);
    virtio_balloon_fpb_instance_init(h.s);
    virtio_balloon_fpb_realize(h.s);
    FUZZ_CHECK(h.src == &h.s->fpb.hint && h.handler && h.bh_cb && h.vm_cb);
    set_features(fuzz_u8(&in));
    fuzz_ram_map(&in, &h.map);

    while (in.left) {
        /* bits 0-5: the operation; 6: do not kick; 7: its variant */
        uint8_t op = fuzz_u8(&in);
        uint8_t kind = (op & 0x3f) % 14;

        switch (kind) {
        case 0:
        case 1:
        case 2:
        case 3:
            if (queue_full()) {
                break;
            }
            switch (kind) {
            case 0:
                op_slot(&in);
                break;
            case 1:
                op_chunk(&in, false);
                break;
            case 2:
                op_raw(&in, op & 0x80);
                break;
            default:
                op_chunk(&in, true);
                break;
            }
            if (!(op & 0x40)) {
                kick();
            }
            break;
        case 4:
            kick();
            break;
        case 5:
            if (h.bh_scheduled) {
                h.bh_scheduled = false;
                h.bh_cb(h.bh_opaque);
                FUZZ_CHECK(!h.npending || h.bh_scheduled || h.resume_due);
            }
            break;
        case 6:
            start_round();
            break;
        case 7:
            h.round_open = false;       /* the next bitmap sync */
            resume_if_due();
            break;
        case 8:
            reset();
            break;
        case 9:
            set_features(fuzz_u8(&in));
            break;
        case 10:
            if (op & 0x80) {
                /* An iteration starts, or ends and resumes the device */
                h.busy = !h.busy;
                if (!h.busy) {
                    resume_if_due();
                }
            } else {
                h.lock_fails = !h.lock_fails;
            }
            break;
        case 11:
            /* Saved and loaded into the same device, then run */
            FUZZ_CHECK(vmstate_virtio_balloon_fpb.pre_save(h.s) == 0);
            FUZZ_CHECK(h.s->fpb.slot_held == (h.s->fpb.slot != NULL));
            h.round_open = false;
            resume_if_due();
            h.vm_cb(h.s, false, 0);
            if (op & 0x80) {
                /* the command ids of a source far along */
                h.s->fpb.cmd_id = h.last_id = fuzz_u32(&in);
                h.s->fpb.issued = h.issued = fuzz_u64(&in);
            }
            FUZZ_CHECK(vmstate_virtio_balloon_fpb.post_load(h.s, 1) == 0);
            h.req_live = false;
            h.vm_cb(h.s, true, 0);
            FUZZ_CHECK(!h.npending || h.bh_scheduled || h.resume_due);
            break;
        case 12:
            h.round_open = false;       /* migration completes or fails */
            resume_if_due();
            break;
        default:
            /* The guest writes over its slot while the device holds it */
            if (h.s->fpb.slot) {
                for (i = 0; i < h.s->fpb.slot->in_num; i++) {
                    memset(h.s->fpb.slot->in_sg[i].iov_base, 0xa5,
                           h.s->fpb.slot->in_sg[i].iov_len);
                }
            }
            break;
        }
        FUZZ_CHECK(h.warnings <= 10 * FPB_ERR__MAX);
    }

    virtio_balloon_fpb_unrealize(h.s);
    FUZZ_CHECK(!h.ntaken && h.bh_deleted && !h.vm_cb && h.queue_deleted);
    for (i = 0; i < h.npending; i++) {
        free_desc(&h.pending[i]);
    }
    g_free(h.s);
    return 0;
}
