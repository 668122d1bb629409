/*
 * libqos: the guest driver side of qemu-fph's free page bitmap, for
 * qtests that act as the guest.  Finds the balloon on the PCI bus,
 * negotiates, sets up the queues at the indices the negotiated features
 * give, posts the request buffer and sends chunks encoded by the same
 * code the unit tests use.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef LIBQOS_FPH_DRIVER_H
#define LIBQOS_FPH_DRIVER_H

#include "libqtest.h"
#include "libqos/libqos-malloc.h"
#include "libqos/pci.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"

#define FPH_FEATURE_BITMAP  16
#define FPH_FEATURE_BULK    17

typedef struct FphDriver {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    int devfn;
    QVirtioPCIDevice *dev;
    uint64_t offered;
    uint64_t features;          /* negotiated */
    QVirtQueue *inflate_vq;
    QVirtQueue *deflate_vq;
    QVirtQueue *vq;             /* the free page bitmap queue, or NULL */
    QVirtQueue *hint_vq;        /* the stock free page hint queue */
    QVirtQueue *report_vq;      /* free page reporting, when negotiated */
    uint64_t slot;              /* guest address of the posted buffer */
    uint32_t slot_head;
    /* Chunks queued by fph_driver_queue(), not yet seen used */
    GArray *queued_addr;
    GArray *queued_head;
    uint32_t queued_first_desc; /* reused once they are all back */
} FphDriver;

/*
 * Probe the balloon and negotiate, as a qemu-fph driver when @bitmap is
 * true, as a stock driver otherwise, with free page hinting if offered.
 */
void fph_driver_init(FphDriver *d, QTestState *qts, bool bitmap);
/*
 * Probe the balloon and negotiate only version 1 and, when @bulk is true
 * and offered, bulk inflate and deflate; set up those two queues.
 */
void fph_driver_init_balloon(FphDriver *d, QTestState *qts, bool bulk);
/* The guest now runs in @qts, after a migration: same memory, new QEMU. */
void fph_driver_moved_to(FphDriver *d, QTestState *qts);
/* Reset the device, as a driver that reloads would. */
void fph_driver_reset(FphDriver *d);

/* Post the request buffer (in guest RAM, or at @gpa); wait for its use. */
void fph_driver_post_slot(FphDriver *d);
void fph_driver_post_slot_at(FphDriver *d, uint64_t gpa);
uint32_t fph_driver_wait_request(FphDriver *d);
/* The same, for a request that may carry flags (FPB_REQ_F_*) */
uint32_t fph_driver_wait_request_flags(FphDriver *d, uint32_t *flags);
/* Wait for the posted buffer to come back; returns the bytes written. */
uint32_t fph_driver_wait_slot(FphDriver *d);

/*
 * Wait until the device used the buffer at @head of @vq.  Works with any
 * accelerator (no qtest clock), so also with KVM running a real guest.
 */
void fph_driver_wait_used(FphDriver *d, QVirtQueue *vq, uint32_t head,
                          uint32_t *len);

/* Send a chunk of @len bytes and wait until the device consumed it. */
void fph_driver_send(FphDriver *d, const void *chunk, size_t len);
/* The same for any buffer on any queue, device-readable or -writable */
void fph_driver_send_on(FphDriver *d, QVirtQueue *vq, const void *buf,
                        size_t len, bool device_writable);
/*
 * Queue @n copies of a chunk with one notification, as a driver that
 * fills the queue does, and wait until the device consumed them all.
 */
void fph_driver_send_queued(FphDriver *d, const void *chunk, size_t len,
                            unsigned int n);
/* The same in two steps: queue and notify, then wait for them all. */
void fph_driver_queue(FphDriver *d, const void *chunk, size_t len,
                      unsigned int n);
void fph_driver_wait_queued(FphDriver *d);

/*
 * A chunk of @nr_bits pages of 4 KiB from @first_pfn, with pages
 * [@first_free, @first_free + @nr_free) (relative) marked free.
 */
uint8_t *fph_chunk_new(size_t *len, uint32_t cmd_id, uint32_t flags,
                       uint64_t first_pfn, uint32_t nr_bits,
                       uint32_t first_free, uint32_t nr_free);

/*
 * Report pages [@gpa + @first_free pages, + @nr_free pages) free for
 * @cmd_id, in one chunk of @nr_pages pages from @gpa.
 */
void fph_driver_report(FphDriver *d, uint32_t cmd_id, uint32_t flags,
                       uint64_t gpa, uint32_t nr_pages,
                       uint32_t first_free, uint32_t nr_free);

/*
 * Move [@gpa, @gpa + @nr_pages pages) into the balloon (@inflate) or out
 * of it, with the stock protocol: page numbers, 256 per buffer.
 */
void fph_driver_balloon_pages(FphDriver *d, bool inflate, uint64_t gpa,
                              uint32_t nr_pages);

/* Report [@gpa, @gpa + @len) free (free page reporting, feature bit 5) */
void fph_driver_report_free(FphDriver *d, uint64_t gpa, uint64_t len);

/* A counter of the balloon with id "balloon" (free-page-bitmap-@name) */
uint64_t fph_balloon_counter(QTestState *qts, const char *name);
/* A uint64 property of the balloon with id "balloon" */
uint64_t fph_balloon_get(QTestState *qts, const char *prop);
/* Turn a migration capability on */
void fph_set_capability(QTestState *qts, const char *cap);
/* Migration's max-bandwidth, to keep the bulk stage below test data */
void fph_set_max_bandwidth(QTestState *qts, uint64_t bytes_per_second);

/* Guest-physical address of the device's virtio common configuration */
uint64_t fph_driver_common_cfg(FphDriver *d);
/* The device status byte, as the driver reads it */
uint8_t fph_driver_status(FphDriver *d);

#endif
