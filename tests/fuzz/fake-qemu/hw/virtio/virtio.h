/*
 * Stand-in for QEMU's hw/virtio/virtio.h: a device, its queues and their
 * elements. Used by the libFuzzer harness of the balloon's queue handler
 * (tests/fuzz/fuzz-balloon-queue.c), which builds
 * hw/virtio/virtio-balloon-fpb.c without QEMU.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef FUZZ_FAKE_VIRTIO_H
#define FUZZ_FAKE_VIRTIO_H

#include <sys/uio.h>
#include "qemu/bswap.h"
#include "qemu/main-loop.h"
#include "migration/vmstate.h"

typedef uint64_t hwaddr;
typedef struct VirtQueue VirtQueue;

typedef struct DeviceState {
    MemReentrancyGuard mem_reentrancy_guard;
} DeviceState;

typedef struct VirtIODevice {
    DeviceState parent_obj;
    uint64_t host_features;
    uint64_t guest_features;
} VirtIODevice;

/* As QEMU's: one allocation holds the element and its scatter lists. */
typedef struct VirtQueueElement {
    unsigned int index;
    unsigned int len;
    unsigned int ndescs;
    unsigned int out_num;
    unsigned int in_num;
    hwaddr *in_addr;
    hwaddr *out_addr;
    struct iovec *in_sg;
    struct iovec *out_sg;
} VirtQueueElement;

typedef void (*VirtIOHandleOutput)(VirtIODevice *vdev, VirtQueue *vq);

#define DEVICE(obj) ((DeviceState *)(obj))
#define VIRTIO_DEVICE(obj) ((VirtIODevice *)(obj))

static inline bool virtio_has_feature(uint64_t features, unsigned int fbit)
{
    return fbit < 64 && (features & (1ULL << fbit));
}

static inline bool virtio_vdev_has_feature(VirtIODevice *vdev,
                                           unsigned int fbit)
{
    return virtio_has_feature(vdev->guest_features, fbit);
}

VirtQueue *virtio_add_queue(VirtIODevice *vdev, int queue_size,
                            VirtIOHandleOutput handle_output);
void virtio_delete_queue(VirtQueue *vq);
int virtio_queue_ready(VirtQueue *vq);
void *virtqueue_pop(VirtQueue *vq, size_t sz);
void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len);
void virtqueue_detach_element(VirtQueue *vq, const VirtQueueElement *elem,
                              unsigned int len);
void virtqueue_unpop(VirtQueue *vq, const VirtQueueElement *elem,
                     unsigned int len);
void virtio_notify(VirtIODevice *vdev, VirtQueue *vq);
void *qemu_get_virtqueue_element(VirtIODevice *vdev, QEMUFile *f, size_t sz);
void qemu_put_virtqueue_element(VirtIODevice *vdev, QEMUFile *f,
                                VirtQueueElement *elem);

#endif
