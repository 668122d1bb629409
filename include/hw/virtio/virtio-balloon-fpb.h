/*
 * virtio-balloon free page bitmap (qemu-fph): the guest answers a request
 * with a bitmap of all its free pages, which migration then does not send.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef HW_VIRTIO_BALLOON_FPB_H
#define HW_VIRTIO_BALLOON_FPB_H

#include "hw/virtio/free-page-bitmap.h"
#include "hw/virtio/virtio.h"
#include "qemu/notify.h"
#include "qemu/thread.h"

/*
 * Feature bit of the protocol.  Bits 0-5 are the spec's; the spec hands
 * out the next ones in order, so qemu-fph stays clear of them, and of 8,
 * which crosvm uses outside the spec.  See docs/free-page-hinting.rst.
 */
#define VIRTIO_BALLOON_F_FREE_PAGE_BITMAP 16

typedef enum FpbRequestState {
    FPB_S_IDLE,         /* no request outstanding */
    FPB_S_REQUESTED,    /* chunks of cmd_id are applied */
    FPB_S_ANSWERED,     /* the last chunk of cmd_id came */
} FpbRequestState;

/* Classes of bad input beyond the message parser's (FpbError) */
typedef enum FpbBadInput {
    FPB_BAD_UNKNOWN_ID = FPB_ERR__MAX,  /* a command id never issued */
    FPB_BAD_AFTER_LAST,             /* a chunk after the last one */
    FPB_BAD_SLOT,                   /* a request buffer too small */
    FPB_BAD_DIRECTION,              /* a buffer both readable and writable */
    FPB_BAD__MAX
} FpbBadInput;

#define FPB_MAX_RAM_RANGES 16

typedef struct VirtIOBalloonFpb {
    VirtQueue *vq;
    /* The buffer the driver keeps posted; answering it issues a request. */
    VirtQueueElement *slot;
    bool request_pending;       /* issue as soon as a slot is posted */
    uint32_t cmd_id;            /* the last command id issued */
    uint32_t state;             /* FpbRequestState */
    uint32_t rounds;            /* requests in this migration */
    int64_t request_ns;
    bool slot_held;             /* for migration of the slot */
    FpbRamRange ranges[FPB_MAX_RAM_RANGES];
    size_t nr_ranges;
    NotifierWithReturn precopy_notifier;
    VMChangeStateEntry *vm_state;
    bool drain_on_run;          /* loaded: look at the queue once running */

    /* The migration thread waits on these for an answer. */
    QemuMutex wait_lock;
    QemuCond wait_cond;

    /* Counters, read through QOM properties */
    uint64_t requests;
    uint64_t answered;
    uint64_t stale_chunks;
    uint64_t chunks;
    uint64_t bitmap_bytes;
    uint64_t free_pages_skipped;
    uint64_t bad_input;
    uint64_t last_latency_us;
    uint32_t bad_reported[FPB_BAD__MAX];
} VirtIOBalloonFpb;

typedef struct VirtIOBalloon VirtIOBalloon;

/* Hooks called by virtio-balloon.c */
void virtio_balloon_fpb_realize(VirtIOBalloon *s);
void virtio_balloon_fpb_unrealize(VirtIOBalloon *s);
void virtio_balloon_fpb_reset(VirtIOBalloon *s);
int virtio_balloon_fpb_validate_features(VirtIOBalloon *s);
void virtio_balloon_fpb_instance_init(VirtIOBalloon *s);
bool virtio_balloon_fpb_enabled(VirtIOBalloon *s);
extern const VMStateDescription vmstate_virtio_balloon_fpb;

#endif
