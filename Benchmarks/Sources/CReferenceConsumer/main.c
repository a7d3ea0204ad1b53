// A bare TPACKET_V3 consumer: the C reference that `wirecap capture`'s plain ring path is
// measured against (issue 14, scripts/cpu-vs-c-reference.sh). It does what any V3 reader must
// and nothing more: one socket, one ring, no fanout, no threads, no copy.
//
// Usage: c-reference-consumer IFACE [PACKETS [BLOCK_SIZE [BLOCKS [BLOCK_TIMEOUT_MS]]]]
//   PACKETS 0 (the default) runs until SIGINT/SIGTERM; the ring defaults are wirecap's
//   RingGeometry.default: 1 MiB x 32 blocks, 8 ms.
// Prints "listening on IFACE" on stderr once the ring is bound, and at the end the same summary
// lines as wirecap capture and tcpdump ("N packets captured", "N packets dropped by kernel").
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what) { perror(what); exit(1); }

static unsigned long arg(int argc, char **argv, int i, unsigned long fallback) {
    return argc > i ? strtoul(argv[i], NULL, 0) : fallback;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s IFACE [PACKETS [BLOCK_SIZE [BLOCKS [BLOCK_TIMEOUT_MS]]]]\n", argv[0]);
        return 2;
    }
    unsigned long limit = arg(argc, argv, 2, 0);
    unsigned int block_size = arg(argc, argv, 3, 1 << 20), blocks = arg(argc, argv, 4, 32);
    unsigned int timeout_ms = arg(argc, argv, 5, 8);

    // No SA_RESTART: a signal must interrupt poll so the loop sees `stop`.
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) die("socket");
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version)) die("PACKET_VERSION");
    // V3 ignores the frame size for placing packets (they are packed in the block), but the
    // kernel still checks block_size % frame_size == 0 and frame_nr == the implied count.
    struct tpacket_req3 req = {
        .tp_block_size = block_size, .tp_block_nr = blocks, .tp_frame_size = 2048,
        .tp_frame_nr = block_size / 2048 * blocks, .tp_retire_blk_tov = timeout_ms,
    };
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) die("PACKET_RX_RING");
    uint8_t *ring = mmap(NULL, (size_t)block_size * blocks, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_LOCKED, fd, 0);
    if (ring == MAP_FAILED) die("mmap");

    struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = if_nametoindex(argv[1])};
    if (!sll.sll_ifindex) die(argv[1]);
    // Promiscuous, as wirecap and tcpdump are by default, so all three see the same frames.
    struct packet_mreq mr = {.mr_ifindex = sll.sll_ifindex, .mr_type = PACKET_MR_PROMISC};
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) die("PACKET_ADD_MEMBERSHIP");
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll)) die("bind");
    fprintf(stderr, "listening on %s\n", argv[1]);

    struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
    unsigned long seen = 0;
    uint64_t checksum = 0;  // printed at the end, so the loads below cannot be optimised away
    unsigned int current = 0;
    while (!stop && (limit == 0 || seen < limit)) {
        struct tpacket_block_desc *block = (void *)(ring + (size_t)current * block_size);
        // The kernel hands a block over by setting TP_STATUS_USER; acquire so the packets it
        // wrote before that are visible. Until then, sleep in poll (woken per retired block).
        if (!(__atomic_load_n(&block->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            poll(&pfd, 1, -1);
            continue;
        }
        uint32_t count = block->hdr.bh1.num_pkts;
        struct tpacket3_hdr *pkt = (void *)((uint8_t *)block + block->hdr.bh1.offset_to_first_pkt);
        for (uint32_t i = 0; i < count; i++) {
            // Every header field a reader needs, and one byte of the frame itself.
            checksum += pkt->tp_snaplen + pkt->tp_len + ((uint8_t *)pkt)[pkt->tp_mac];
            pkt = (void *)((uint8_t *)pkt + pkt->tp_next_offset);
        }
        seen += count;
        // Hand the block back; release so our reads are done before the kernel may rewrite it.
        __atomic_store_n(&block->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        current = (current + 1) % blocks;
    }

    struct tpacket_stats_v3 st;
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len)) die("PACKET_STATISTICS");
    printf("checksum %llu\n", (unsigned long long)checksum);
    fprintf(stderr, "%lu packets captured\n%u packets received by filter\n%u packets dropped by kernel\n",
            seen, st.tp_packets, st.tp_drops);
    return 0;
}
