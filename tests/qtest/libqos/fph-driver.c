/*
 * libqos: the guest driver side of qemu-fph's free page bitmap.
 *
 * Copyright (c) 2026 The qemu-fph authors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/qmp/qdict.h"
#include "libqos/fph-driver.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "standard-headers/linux/virtio_balloon.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"
#include "hw/pci/pci.h"
#include "hw/virtio/free-page-bitmap.h"

#define FPH_PAGE            4096
#define FPH_TIMEOUT_US      (30 * 1000 * 1000)
/* Modern-only virtio PCI device ids are 0x1040 plus the virtio id */
#define PCI_DEVICE_ID_VIRTIO_BALLOON_MODERN (0x1040 + VIRTIO_ID_BALLOON)

static void found_balloon(QPCIDevice *dev, int devfn, void *opaque)
{
    *(int *)opaque = devfn;
    g_free(dev);
}

/* The balloon's function, transitional or modern, wherever it sits. */
static int find_balloon(QPCIBus *bus)
{
    int devfn = -1;

    qpci_device_foreach(bus, PCI_VENDOR_ID_REDHAT_QUMRANET,
                        PCI_DEVICE_ID_VIRTIO_BALLOON, found_balloon, &devfn);
    if (devfn < 0) {
        qpci_device_foreach(bus, PCI_VENDOR_ID_REDHAT_QUMRANET,
                            PCI_DEVICE_ID_VIRTIO_BALLOON_MODERN,
                            found_balloon, &devfn);
    }
    g_assert_cmpint(devfn, >=, 0);
    return devfn;
}

static void attach(FphDriver *d, QTestState *qts)
{
    QPCIAddress addr;

    d->qts = qts;
    d->bus = qpci_new_pc(qts, &d->alloc);
    d->devfn = find_balloon(d->bus);
    addr = (QPCIAddress) { .devfn = d->devfn };
    d->dev = virtio_pci_new(d->bus, &addr);
    g_assert(d->dev);
    qvirtio_pci_device_enable(d->dev);
}

/*
 * Queue indices follow the negotiated features: inflate, deflate, then
 * stats, free page hint and free page reporting when negotiated, then
 * the free page bitmap.
 */
static uint16_t queue_index(uint64_t features, unsigned int feature)
{
    static const unsigned int optional[] = {
        VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_FREE_PAGE_HINT,
        VIRTIO_BALLOON_F_REPORTING, FPH_FEATURE_BITMAP,
    };
    uint16_t index = 2;
    size_t i;

    for (i = 0; optional[i] != feature; i++) {
        index += !!(features & (1ULL << optional[i]));
    }
    return index;
}

/* Find the balloon and read what it offers, as a driver's probe does. */
static uint64_t probe(FphDriver *d, QTestState *qts)
{
    memset(d, 0, sizeof(*d));
    pc_alloc_init(&d->alloc, qts, ALLOC_NO_FLAGS);
    attach(d, qts);
    qvirtio_start_device(&d->dev->vdev);
    fph_driver_reset(d);
    d->offered = qvirtio_get_features(&d->dev->vdev);
    return d->offered;
}

void fph_driver_init(FphDriver *d, QTestState *qts, bool bitmap)
{
    uint64_t offered = probe(d, qts), wanted;

    g_assert(!bitmap || offered & (1ULL << FPH_FEATURE_BITMAP));
    wanted = (1ULL << VIRTIO_F_VERSION_1) |
             (1ULL << VIRTIO_BALLOON_F_STATS_VQ) |
             (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT) |
             (1ULL << VIRTIO_BALLOON_F_REPORTING) |
             (bitmap ? 1ULL << FPH_FEATURE_BITMAP : 0);
    d->features = offered & wanted;
    qvirtio_set_features(&d->dev->vdev, d->features);
    d->inflate_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc, 0);
    d->deflate_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc, 1);
    if (d->features & (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT)) {
        d->hint_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc,
                                      queue_index(d->features,
                                          VIRTIO_BALLOON_F_FREE_PAGE_HINT));
    }
    if (d->features & (1ULL << VIRTIO_BALLOON_F_REPORTING)) {
        d->report_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc,
                                        queue_index(d->features,
                                            VIRTIO_BALLOON_F_REPORTING));
    }
    d->vq = bitmap ? qvirtqueue_setup(&d->dev->vdev, &d->alloc,
                                      queue_index(d->features,
                                                  FPH_FEATURE_BITMAP))
                   : NULL;
    qvirtio_set_driver_ok(&d->dev->vdev);
}

/*
 * libqos hands each descriptor out once.  Take back @n used ones from
 * @first, the last handed out, so that a test may send without end.
 */
static void take_back_descriptors(QVirtQueue *vq, uint32_t first,
                                  uint32_t n)
{
    g_assert_cmpuint(vq->free_head, ==, first + n);
    vq->free_head = first;
    vq->num_free += n;
}

void fph_driver_report_free(FphDriver *d, uint64_t gpa, uint64_t len)
{
    QVirtQueue *vq = d->report_vq;
    uint32_t head;

    g_assert(vq);
    /* Reported pages go device-writable, as Linux's page_reporting sends */
    head = qvirtqueue_add(d->qts, vq, gpa, len, true, false);
    qvirtqueue_kick(d->qts, &d->dev->vdev, vq, head);
    fph_driver_wait_used(d, vq, head, NULL);
    take_back_descriptors(vq, head, 1);
}

void fph_driver_init_balloon(FphDriver *d, QTestState *qts, bool bulk)
{
    uint64_t offered = probe(d, qts);

    d->features = offered & ((1ULL << VIRTIO_F_VERSION_1) |
                             (bulk ? 1ULL << FPH_FEATURE_BULK : 0));
    qvirtio_set_features(&d->dev->vdev, d->features);
    d->inflate_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc, 0);
    d->deflate_vq = qvirtqueue_setup(&d->dev->vdev, &d->alloc, 1);
    qvirtio_set_driver_ok(&d->dev->vdev);
}

void fph_driver_reset(FphDriver *d)
{
    qvirtio_reset(&d->dev->vdev);
    qvirtio_set_acknowledge(&d->dev->vdev);
    qvirtio_set_driver(&d->dev->vdev);
}

void fph_driver_moved_to(FphDriver *d, QTestState *qts)
{
    attach(d, qts);
}

void fph_driver_post_slot(FphDriver *d)
{
    uint64_t gpa = guest_alloc(&d->alloc, FPB_REQ_SIZE);

    qtest_memset(d->qts, gpa, 0, FPB_REQ_SIZE);
    fph_driver_post_slot_at(d, gpa);
}

void fph_driver_post_slot_at(FphDriver *d, uint64_t gpa)
{
    d->slot = gpa;
    d->slot_head = qvirtqueue_add(d->qts, d->vq, d->slot, FPB_REQ_SIZE,
                                  true, false);
    qvirtqueue_kick(d->qts, &d->dev->vdev, d->vq, d->slot_head);
}

/*
 * Polled in real time: qvirtio_wait_used_elem() steps the qtest clock,
 * which does not exist when a real accelerator runs the guest, and reads
 * the interrupt status, which stands for several buffers at once.
 */
void fph_driver_wait_used(FphDriver *d, QVirtQueue *vq, uint32_t head,
                          uint32_t *len)
{
    gint64 deadline = g_get_monotonic_time() + FPH_TIMEOUT_US;
    uint32_t got;

    while (!qvirtqueue_get_buf(d->qts, vq, &got, len)) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(100);
    }
    g_assert_cmpuint(got, ==, head);
}

uint32_t fph_driver_wait_slot(FphDriver *d)
{
    uint32_t len = 0;

    fph_driver_wait_used(d, d->vq, d->slot_head, &len);
    return len;
}

uint32_t fph_driver_wait_request_flags(FphDriver *d, uint32_t *flags)
{
    uint8_t req[FPB_REQ_SIZE];
    uint32_t cmd_id;

    g_assert_cmpuint(fph_driver_wait_slot(d), ==, FPB_REQ_SIZE);
    qtest_memread(d->qts, d->slot, req, sizeof(req));
    fpb_parse_request(req, &cmd_id, flags);
    return cmd_id;
}

uint32_t fph_driver_wait_request(FphDriver *d)
{
    uint32_t flags, cmd_id = fph_driver_wait_request_flags(d, &flags);

    g_assert_cmpuint(flags, ==, 0);
    return cmd_id;
}

void fph_driver_send_on(FphDriver *d, QVirtQueue *vq, const void *buf,
                        size_t len, bool device_writable)
{
    uint64_t addr = guest_alloc(&d->alloc, len);
    uint32_t head;

    qtest_memwrite(d->qts, addr, buf, len);
    head = qvirtqueue_add(d->qts, vq, addr, len, device_writable, false);
    qvirtqueue_kick(d->qts, &d->dev->vdev, vq, head);
    fph_driver_wait_used(d, vq, head, NULL);
    guest_free(&d->alloc, addr);
}

void fph_driver_send(FphDriver *d, const void *chunk, size_t len)
{
    fph_driver_send_on(d, d->vq, chunk, len, false);
}

void fph_driver_queue(FphDriver *d, const void *chunk, size_t len,
                      unsigned int n)
{
    QVirtioDevice *vdev = &d->dev->vdev;
    /* The avail ring: flags, idx, ring[] (x86: little endian, as qtest) */
    uint16_t idx = qtest_readw(d->qts, d->vq->avail + 2);
    unsigned int i;

    if (!d->queued_addr) {
        d->queued_addr = g_array_new(false, false, sizeof(uint64_t));
        d->queued_head = g_array_new(false, false, sizeof(uint32_t));
    }
    if (!d->queued_head->len) {
        d->queued_first_desc = d->vq->free_head;
    }
    for (i = 0; i < n; i++) {
        uint64_t addr = guest_alloc(&d->alloc, len);
        uint32_t head;

        qtest_memwrite(d->qts, addr, chunk, len);
        head = qvirtqueue_add(d->qts, d->vq, addr, len, false, false);
        qtest_writew(d->qts, d->vq->avail + 4 + 2 * ((idx + i) % d->vq->size),
                     head);
        g_array_append_val(d->queued_addr, addr);
        g_array_append_val(d->queued_head, head);
    }
    /* Publish them all, then notify once. */
    qtest_writew(d->qts, d->vq->avail + 2, idx + n);
    vdev->bus->virtqueue_kick(vdev, d->vq);
}

void fph_driver_wait_queued(FphDriver *d)
{
    guint i;

    for (i = 0; d->queued_head && i < d->queued_head->len; i++) {
        fph_driver_wait_used(d, d->vq,
                             g_array_index(d->queued_head, uint32_t, i), NULL);
        guest_free(&d->alloc, g_array_index(d->queued_addr, uint64_t, i));
    }
    if (d->queued_head && d->queued_head->len) {
        /* So that a flood fits in the ring */
        take_back_descriptors(d->vq, d->queued_first_desc,
                              d->queued_head->len);
        g_array_set_size(d->queued_head, 0);
        g_array_set_size(d->queued_addr, 0);
    }
    d->dev->vdev.bus->get_queue_isr_status(&d->dev->vdev, d->vq);
}

void fph_driver_send_queued(FphDriver *d, const void *chunk, size_t len,
                            unsigned int n)
{
    fph_driver_queue(d, chunk, len, n);
    fph_driver_wait_queued(d);
}

uint8_t *fph_chunk_new(size_t *len, uint32_t cmd_id, uint32_t flags,
                       uint64_t first_pfn, uint32_t nr_bits,
                       uint32_t first_free, uint32_t nr_free)
{
    uint8_t *buf;
    uint32_t i;

    *len = FPB_CHUNK_HEADER_SIZE + nr_bits / 8;
    buf = g_malloc0(*len);
    fpb_build_chunk_header(buf, cmd_id, flags, first_pfn, FPH_PAGE,
                           nr_bits);
    for (i = first_free; i < first_free + nr_free; i++) {
        fpb_chunk_set_bit(buf, i);
    }
    return buf;
}

void fph_driver_report(FphDriver *d, uint32_t cmd_id, uint32_t flags,
                       uint64_t gpa, uint32_t nr_pages,
                       uint32_t first_free, uint32_t nr_free)
{
    size_t len;
    g_autofree uint8_t *chunk = fph_chunk_new(&len, cmd_id, flags,
                                              gpa / FPH_PAGE, nr_pages,
                                              first_free, nr_free);

    fph_driver_send(d, chunk, len);
}

/* The stock driver sends at most this many page numbers per buffer */
#define BALLOON_PFNS_PER_BUFFER 256

void fph_driver_balloon_pages(FphDriver *d, bool inflate, uint64_t gpa,
                              uint32_t nr_pages)
{
    QVirtQueue *vq = inflate ? d->inflate_vq : d->deflate_vq;
    uint32_t pfns[BALLOON_PFNS_PER_BUFFER];
    uint32_t done, n, i, head;
    uint64_t addr = guest_alloc(&d->alloc, sizeof(pfns));

    for (done = 0; done < nr_pages; done += n) {
        n = MIN(nr_pages - done, BALLOON_PFNS_PER_BUFFER);
        for (i = 0; i < n; i++) {
            pfns[i] = cpu_to_le32(gpa / FPH_PAGE + done + i);
        }
        qtest_memwrite(d->qts, addr, pfns, n * sizeof(pfns[0]));
        head = qvirtqueue_add(d->qts, vq, addr, n * sizeof(pfns[0]), false,
                              false);
        qvirtqueue_kick(d->qts, &d->dev->vdev, vq, head);
        fph_driver_wait_used(d, vq, head, NULL);
        take_back_descriptors(vq, head, 1);
    }
    guest_free(&d->alloc, addr);
}

uint64_t fph_balloon_counter(QTestState *qts, const char *name)
{
    g_autofree char *prop = g_strconcat("free-page-bitmap-", name, NULL);

    return fph_balloon_get(qts, prop);
}

uint64_t fph_balloon_get(QTestState *qts, const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': %s } }",
                           "/machine/peripheral/balloon/virtio-backend",
                           prop);
    uint64_t value;

    g_assert(qdict_haskey(rsp, "return"));
    value = qdict_get_int(rsp, "return");
    qobject_unref(rsp);
    return value;
}

void fph_set_capability(QTestState *qts, const char *cap)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-capabilities',"
                             "'arguments': { 'capabilities': "
                             "[ { 'capability': %s, 'state': true } ] } }",
                             cap);
}

void fph_set_max_bandwidth(QTestState *qts, uint64_t bytes_per_second)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             "'arguments': { 'max-bandwidth': %" PRIu64
                             " } }", bytes_per_second);
}

uint64_t fph_driver_common_cfg(FphDriver *d)
{
    return d->dev->bar.addr + d->dev->common_cfg_offset;
}

uint8_t fph_driver_status(FphDriver *d)
{
    return d->dev->vdev.bus->get_status(&d->dev->vdev);
}
