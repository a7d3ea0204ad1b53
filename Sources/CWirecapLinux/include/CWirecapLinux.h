// The Linux packet-socket surface wirecap needs, with the TPACKET macros and the few
// calls Swift cannot make directly (variadic ioctl, setns, affinity) wrapped as prefixed functions.
#ifndef CWIRECAPLINUX_H
#define CWIRECAPLINUX_H

#ifdef __linux__
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/filter.h>
#include <sys/epoll.h>

// Byte offsets into TPACKET_V3 structures. The block walk reads fields at these offsets so that
// the hot loop is plain loads that Swift can inline, and so that synthetic test blocks are laid
// out by the same numbers the kernel uses.
enum {
    CWirecapLinux_BLOCK_STATUS = offsetof(struct tpacket_block_desc, hdr.bh1.block_status),
    CWirecapLinux_BLOCK_NUM_PKTS = offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts),
    CWirecapLinux_BLOCK_FIRST_PKT = offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt),
    CWirecapLinux_BLOCK_LEN = offsetof(struct tpacket_block_desc, hdr.bh1.blk_len),
    CWirecapLinux_BLOCK_SEQ = offsetof(struct tpacket_block_desc, hdr.bh1.seq_num),
    CWirecapLinux_BLOCK_DESC_SIZE = sizeof(struct tpacket_block_desc),
    CWirecapLinux_PKT_NEXT = offsetof(struct tpacket3_hdr, tp_next_offset),
    CWirecapLinux_PKT_SEC = offsetof(struct tpacket3_hdr, tp_sec),
    CWirecapLinux_PKT_NSEC = offsetof(struct tpacket3_hdr, tp_nsec),
    CWirecapLinux_PKT_SNAPLEN = offsetof(struct tpacket3_hdr, tp_snaplen),
    CWirecapLinux_PKT_LEN = offsetof(struct tpacket3_hdr, tp_len),
    CWirecapLinux_PKT_STATUS = offsetof(struct tpacket3_hdr, tp_status),
    CWirecapLinux_PKT_MAC = offsetof(struct tpacket3_hdr, tp_mac),
    CWirecapLinux_PKT_RXHASH = offsetof(struct tpacket3_hdr, hv1.tp_rxhash),
    CWirecapLinux_PKT_VLAN_TCI = offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci),
    CWirecapLinux_PKT_VLAN_TPID = offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid),
    CWirecapLinux_TPACKET3_HDRLEN = TPACKET3_HDRLEN,
    CWirecapLinux_TPACKET_ALIGNMENT = TPACKET_ALIGNMENT,
};

// block_status is shared with the kernel: acquire on read so the packet bytes are visible,
// release on hand-back so our last reads happen before the kernel may overwrite the block.
static inline uint32_t CWirecapLinux_block_status_acquire(const void *block) {
    return __atomic_load_n((const uint32_t *)((const char *)block + CWirecapLinux_BLOCK_STATUS),
                           __ATOMIC_ACQUIRE);
}
static inline void CWirecapLinux_block_release(void *block) {
    __atomic_store_n((uint32_t *)((char *)block + CWirecapLinux_BLOCK_STATUS),
                     (uint32_t)TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

// Pool mode lends a retired block to a consumer in place and marks it with this bit beside
// TP_STATUS_USER until the consumer gives it back. The kernel tests only TP_STATUS_USER (a held
// block, which it never writes), so the bit is ours; it tells the capture thread, when it comes
// round the ring to the block, that the USER status is a loan and not a newly retired block.
enum { CWirecapLinux_BLOCK_STATUS_LENT = 1 << 30 };
static inline void CWirecapLinux_block_mark_lent(void *block) {
    uint32_t *status = (uint32_t *)((char *)block + CWirecapLinux_BLOCK_STATUS);
    __atomic_store_n(status, __atomic_load_n(status, __ATOMIC_RELAXED) | (uint32_t)CWirecapLinux_BLOCK_STATUS_LENT,
                     __ATOMIC_RELEASE);
}

// A read prefetch: never faults, so it may point past the end of a block.
static inline void CWirecapLinux_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// memmem (a GNU extension the Swift Glibc module does not show): first match of needle, or NULL.
const void *CWirecapLinux_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

// Sockets and the ring.
int CWirecapLinux_packet_socket(int protocol_host_order);
int CWirecapLinux_set_int_option(int fd, int level, int name, int value);
int CWirecapLinux_setup_rx_ring(int fd, unsigned block_size, unsigned block_count,
                                unsigned frame_size, unsigned retire_tov_ms);
int CWirecapLinux_bind(int fd, int ifindex, int protocol_host_order);
int CWirecapLinux_join_fanout(int fd, uint16_t group, uint16_t type, uint16_t flags);
int CWirecapLinux_fanout_group_id(int fd, uint16_t *group);
int CWirecapLinux_set_promiscuous(int fd, int ifindex);
// A one-instruction classic BPF program `ret #k`: k = 0 drops everything, k = snaplen accepts
// and truncates in the kernel, so bytes past the snap length are never copied into the ring.
int CWirecapLinux_attach_ret_filter(int fd, uint32_t k);
// Attaches a classic BPF program (as compiled by libpcap) to the socket; replaces any filter.
int CWirecapLinux_attach_filter(int fd, const struct sock_filter *instructions, unsigned short count);
int CWirecapLinux_read_stats(int fd, uint64_t *packets, uint64_t *drops, uint64_t *freezes);
// PACKET_ROLLOVER_STATS: cumulative (not reset on read); fails with EINVAL without FLAG_ROLLOVER.
int CWirecapLinux_read_rollover_stats(int fd, uint64_t *all, uint64_t *huge, uint64_t *failed);

// Interfaces.
int CWirecapLinux_interface_flags(const char *name, unsigned *flags);
int CWirecapLinux_interface_hwtype(const char *name, unsigned short *arphrd);
int CWirecapLinux_interface_mtu(const char *name, int *mtu);

// Threads and namespaces.
int CWirecapLinux_pin_current_thread(int cpu);
int CWirecapLinux_allowed_cpus(int *cpus, int capacity);
int CWirecapLinux_current_cpu(void);

// A SCHED_OTHER calling thread becomes SCHED_BATCH (its nice value kept): a wake-up of it no
// longer preempts the thread running on its CPU. Other policies are left as they are.
int CWirecapLinux_make_current_thread_batch(void);
int CWirecapLinux_setns_net(int fd);
// Moves the calling thread into a new network namespace of its own (CAP_SYS_ADMIN).
int CWirecapLinux_unshare_net(void);
int CWirecapLinux_eventfd(void);
int CWirecapLinux_eventfd_signal(int fd);
// Reads (and so zeroes) a non-blocking eventfd's counter; 0 if it was already zero.
int CWirecapLinux_eventfd_reset(int fd);
// Blocks SIGINT and SIGTERM in the calling thread (threads it starts inherit the mask) so that
// one thread can take them with sigtimedwait instead of running code in a signal handler.
int CWirecapLinux_block_stop_signals(void);
// Waits up to timeout_ms for SIGINT or SIGTERM; returns the signal number, 0 on timeout.
int CWirecapLinux_wait_stop_signal(int timeout_ms);
// As CWirecapLinux_wait_stop_signal, but also wakes when `fd` becomes readable (an eventfd
// that asks for a stop): returns the signal number, -1 for the descriptor, 0 on timeout.
// fd < 0: the signals alone.
int CWirecapLinux_wait_stop_signal_or_readable(int fd, int timeout_ms);
// epoll for the capture threads, which sleep on the ring edge-triggered: poll(2) reports a ring
// readable while the block before the kernel's is held, and a lent block is.
// Tags 0..15 name the descriptors; the wait returns a bit per readable tag, and bit tag + 16
// for an error or hang-up on it (0: time-out or interrupted). The wait is inline: it runs once
// per retired block, right after a wake-up, when every code page it touches is cold.
int CWirecapLinux_epoll_create(void);
int CWirecapLinux_epoll_add(int epfd, int fd, int edge_triggered, unsigned tag);
// Edge-triggered and exclusive: of the epoll instances that hold `fd` this way, a wake-up of
// `fd` wakes only the first one (in the order they were added) that has a thread waiting in it.
int CWirecapLinux_epoll_add_exclusive(int epfd, int fd, unsigned tag);
int CWirecapLinux_epoll_remove(int epfd, int fd);
static inline unsigned CWirecapLinux_epoll_wait(int epfd, int timeout_ms) {
    struct epoll_event events[4];
    int n = epoll_wait(epfd, events, 4, timeout_ms);
    unsigned ready = 0;
    for (int i = 0; i < n; i++) {
        if (events[i].data.u32 < 16) ready |= 1u << events[i].data.u32;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) ready |= 1u << (events[i].data.u32 + 16);
    }
    return ready;
}
double CWirecapLinux_thread_cpu_seconds(void);
// Privileges. Keeps only the capabilities in `keep` (bit n: capability n) in the calling
// thread's effective and permitted sets (threads it starts afterwards inherit them), clears
// the inheritable and ambient sets.
int CWirecapLinux_keep_capabilities(uint64_t keep);
// The calling thread's effective capabilities (UINT64_MAX if they cannot be read).
uint64_t CWirecapLinux_effective_capabilities(void);
// tcpdump -Z: the user's supplementary groups, its group, then the user. 0, or -errno
// (-ENOENT: no such user).
int CWirecapLinux_switch_user(const char *name, unsigned *uid_out);
// systemd's readiness protocol without libsystemd: `state` ("READY=1", ...) as one datagram to
// $NOTIFY_SOCKET. 1 sent, 0 no NOTIFY_SOCKET (not under a Type=notify unit), -1 failed (errno).
int CWirecapLinux_sd_notify(const char *state);
// Clears capability `cap` (a CAP_* number from <linux/capability.h>) from the calling thread's
// effective set, leaving the permitted and inheritable sets and every other thread alone
// (capabilities are per thread on Linux): a thread that behaves as a process that gave up a
// privilege, for tests. Returns 0, or -1 with errno (capget/capset).
int CWirecapLinux_drop_effective_capability(int cap);
// RLIMIT_MEMLOCK's soft limit in bytes; UINT64_MAX when unlimited.
uint64_t CWirecapLinux_memlock_limit(void);
double CWirecapLinux_process_cpu_seconds(void);
uint64_t CWirecapLinux_monotonic_ns(void);
uint64_t CWirecapLinux_monotonic_coarse_ns(void);

// Sending: one sendmmsg of `count` frames laid out back to back (lengths in `lengths`).
// Returns how many were sent, or -1 with errno for the first frame.
int CWirecapLinux_send_batch(int fd, const uint8_t *frames, const uint32_t *lengths,
                             unsigned count);

// Transmit ring (PACKET_TX_RING, TPACKET_V2), for replay. Each frame of the ring is a
// tpacket2_hdr followed, at CWirecapLinux_TX_DATA, by the bytes to send. User space fills a
// frame whose status is AVAILABLE, sets tp_len, then stores SEND_REQUEST (release); a send()
// with no data makes the kernel send every SEND_REQUEST frame from its head onwards, marking
// each SENDING and, once the driver is done with it, AVAILABLE again. A frame the kernel cannot
// send is marked WRONG_FORMAT and the kernel stops there until user space puts a frame with
// status SEND_REQUEST in that slot.
enum {
    CWirecapLinux_TX_STATUS = offsetof(struct tpacket2_hdr, tp_status),
    CWirecapLinux_TX_LEN = offsetof(struct tpacket2_hdr, tp_len),
    CWirecapLinux_TX_SNAPLEN = offsetof(struct tpacket2_hdr, tp_snaplen),
    // Where the kernel reads a frame's bytes (tp_hdrlen - sizeof(struct sockaddr_ll)).
    CWirecapLinux_TX_DATA = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll),
    CWirecapLinux_TX_STATUS_AVAILABLE = TP_STATUS_AVAILABLE,
    CWirecapLinux_TX_STATUS_SEND_REQUEST = TP_STATUS_SEND_REQUEST,
    CWirecapLinux_TX_STATUS_SENDING = TP_STATUS_SENDING,
    CWirecapLinux_TX_STATUS_WRONG_FORMAT = TP_STATUS_WRONG_FORMAT,
    // The status bits that say who owns a frame (the rest are timestamp flags).
    CWirecapLinux_TX_STATUS_OWNER_MASK = TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT,
};

// tp_status is shared with the kernel: acquire on read, so that a frame seen AVAILABLE is no
// longer read by the kernel; release on hand-over, so the kernel sees the bytes before the status.
static inline uint32_t CWirecapLinux_tx_status_acquire(const void *frame) {
    return __atomic_load_n((const uint32_t *)((const char *)frame + CWirecapLinux_TX_STATUS),
                           __ATOMIC_ACQUIRE);
}
static inline void CWirecapLinux_tx_status_release(void *frame, uint32_t status) {
    __atomic_store_n((uint32_t *)((char *)frame + CWirecapLinux_TX_STATUS), status, __ATOMIC_RELEASE);
}
// Fills a frame with `len` bytes and hands it to the kernel (status SEND_REQUEST, release).
static inline void CWirecapLinux_tx_fill(void *frame, const void *bytes, uint32_t len) {
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_LEN) = len;
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_SNAPLEN) = len;
    __builtin_memcpy((char *)frame + CWirecapLinux_TX_DATA, bytes, len);
    CWirecapLinux_tx_status_release(frame, (uint32_t)TP_STATUS_SEND_REQUEST);
}

// With PACKET_VNET_HDR on the socket, each frame's bytes start with a struct virtio_net_hdr
// (CWirecapLinux_TX_VNET_SIZE bytes) whose hdr_len says how many leading bytes the kernel copies
// into the skb; the rest is attached zero-copy as fragments of the ring's pages. Fills a frame
// that way (no offloads: no checksum, no GSO) and hands it to the kernel.
enum { CWirecapLinux_TX_VNET_SIZE = 10 };
static inline void CWirecapLinux_tx_fill_vnet(void *frame, const void *bytes, uint32_t len, uint16_t linear) {
    uint8_t *p = (uint8_t *)frame + CWirecapLinux_TX_DATA;
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_LEN) = len + CWirecapLinux_TX_VNET_SIZE;
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_SNAPLEN) = len + CWirecapLinux_TX_VNET_SIZE;
    // flags 0, gso_type VIRTIO_NET_HDR_GSO_NONE, hdr_len, gso_size, csum_start, csum_offset; the
    // kernel reads packet sockets' headers in the host's byte order (legacy virtio).
    __builtin_memset(p, 0, CWirecapLinux_TX_VNET_SIZE);
    __builtin_memcpy(p + 2, &linear, sizeof(linear));
    __builtin_memcpy(p + CWirecapLinux_TX_VNET_SIZE, bytes, len);
    CWirecapLinux_tx_status_release(frame, (uint32_t)TP_STATUS_SEND_REQUEST);
}

// As the two above, with a 4-byte VLAN tag (`tag`: TPID << 16 | TCI, host order) inserted after
// the 12 bytes of MAC addresses during the copy: a forwarder pushes a tag without moving the
// frame first. `len` is the frame's length without the tag; needs len >= 12.
static inline void CWirecapLinux_tx_fill_tagged(void *frame, const void *bytes, uint32_t len, uint16_t linear,
                                                uint32_t prefix, uint32_t tag) {
    uint8_t *p = (uint8_t *)frame + CWirecapLinux_TX_DATA;
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_LEN) = len + 4 + prefix;
    *(uint32_t *)((char *)frame + CWirecapLinux_TX_SNAPLEN) = len + 4 + prefix;
    if (prefix) {
        __builtin_memset(p, 0, CWirecapLinux_TX_VNET_SIZE);
        __builtin_memcpy(p + 2, &linear, sizeof(linear));
        p += CWirecapLinux_TX_VNET_SIZE;
    }
    uint32_t be = __builtin_bswap32(tag);
    __builtin_memcpy(p, bytes, 12);
    __builtin_memcpy(p + 12, &be, 4);
    __builtin_memcpy(p + 16, (const uint8_t *)bytes + 12, len - 12);
    CWirecapLinux_tx_status_release(frame, (uint32_t)TP_STATUS_SEND_REQUEST);
}

// PACKET_TX_RING with tpacket_req (set PACKET_VERSION first). frame_size must divide block_size.
int CWirecapLinux_setup_tx_ring(int fd, unsigned block_size, unsigned block_count, unsigned frame_size);
// send(fd, NULL, 0, MSG_DONTWAIT): the kernel sends the SEND_REQUEST frames from its head on
// and returns without waiting for the driver. Returns bytes handed over, or -1 with errno.
long CWirecapLinux_tx_kick(int fd);
// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (absolute, so errors never add up).
int CWirecapLinux_sleep_until_ns(uint64_t deadline_ns);
// PR_SET_TIMERSLACK for the calling thread: how late the kernel may wake a sleep (default 50 us).
int CWirecapLinux_set_timer_slack_ns(unsigned long ns);


// An interface's receive counters from rtnetlink (IFLA_STATS64), read in the calling thread's
// network namespace. sysfs would show the namespace sysfs was mounted in, not the thread's.
typedef struct {
    uint64_t rx_packets;
    uint64_t rx_dropped;
    uint64_t rx_missed_errors;
    uint64_t rx_fifo_errors;
} CWirecapLinux_link_counters;
// 0 on success, -1 with errno set.
int CWirecapLinux_read_link_counters(int ifindex, CWirecapLinux_link_counters *out);

#endif // __linux__
#endif // CWIRECAPLINUX_H
