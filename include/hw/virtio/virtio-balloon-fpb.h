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
#include "migration/free-page-hint.h"

/*
 * Feature bit of the protocol.  Bits 0-5 are the spec's; the spec hands
 * out the next ones in order, so qemu-fph stays clear of them, and of 8,
 * which crosvm uses outside the spec.  See docs/free-page-hinting.rst.
 */
#define VIRTIO_BALLOON_F_FREE_PAGE_BITMAP 16

/*
 * The request state machine.  The driver keeps one buffer posted (the
 * slot); answering it is what issues a request.
 */
typedef enum FpbState {
    FPB_IDLE,           /* not asked; chunks are stale or unexpected */
    FPB_WANT_SLOT,      /* migration asked; issue once a slot is posted */
    FPB_REQUESTED,      /* cmd_id issued: its chunks are applied */
    FPB_ANSWERED,       /* the last chunk of cmd_id came */
} FpbState;

typedef struct VirtIOBalloonFpb {
    VirtQueue *vq;
    VirtQueueElement *slot;     /* the posted buffer the device holds */
    uint32_t state;             /* FpbState */
    uint32_t cmd_id;            /* the last command id issued */
    uint64_t issued;            /* command ids issued, ever */
    FreePageHintRound round;    /* migration's round of cmd_id */
    uint32_t req_flags;         /* FPB_REQ_F_* of the request to issue */
    bool slot_held;             /* for migration of the slot */
    VMChangeStateEntry *vm_state;
    bool drain_on_run;          /* loaded: look at the queue once running */
    QEMUBH *next_turn;          /* more chunks than a turn takes, or resumed */

    /* Migration's view: its counters are the QOM properties too. */
    FreePageHintSource hint;
    uint32_t bad_reported[FPB_ERR__MAX];
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
