// A libpcap reader in the style of Zeek's pcap packet source (src/iosource/pcap/Source.cc):
// pcap_create + pcap_set_* + pcap_activate, a non-blocking handle, the run loop waits on
// pcap_get_selectable_fd and then drains the handle with pcap_next_ex until it has nothing.
// Plain libpcap code: the tests run it with LD_PRELOAD=libwirecap-pcap.so on a wirecap device.
//
// Usage: zeek-style-reader DEVICE FILTER OUTFILE COUNT [IDLE_SECONDS]
// Writes every packet to OUTFILE (pcap_dump), stops after COUNT packets, on SIGINT/SIGTERM, or
// after IDLE_SECONDS (default 10) without one; prints "listening on DEVICE" once ready and
// the totals at the end.
#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void fail(const char *what, const char *message) {
    fprintf(stderr, "zeek-style-reader: %s: %s\n", what, message);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DEVICE FILTER OUTFILE COUNT [IDLE_SECONDS]\n", argv[0]);
        return 2;
    }
    const char *device = argv[1], *filter = argv[2], *outfile = argv[3];
    unsigned long count = strtoul(argv[4], NULL, 10);
    int idle = argc > 5 ? atoi(argv[5]) : 10;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_create(device, errbuf);
    if (!p) fail("pcap_create", errbuf);
    if (pcap_set_snaplen(p, 65535) || pcap_set_promisc(p, 1) || pcap_set_timeout(p, 1) || pcap_set_buffer_size(p, 8 << 20))
        fail("pcap_set_*", pcap_geterr(p));
    if (pcap_activate(p) < 0) fail("pcap_activate", pcap_geterr(p));
    struct bpf_program code;
    if (pcap_compile(p, &code, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) fail("pcap_compile", pcap_geterr(p));
    if (pcap_setfilter(p, &code) < 0) fail("pcap_setfilter", pcap_geterr(p));
    pcap_freecode(&code);
    if (pcap_setnonblock(p, 1, errbuf) < 0) fail("pcap_setnonblock", errbuf);
    if (pcap_getnonblock(p, errbuf) != 1) fail("pcap_getnonblock", "the handle is not non-blocking");
    int fd = pcap_get_selectable_fd(p);
    if (fd < 0) fail("pcap_get_selectable_fd", "no descriptor to wait on");
    pcap_dumper_t *out = pcap_dump_open(p, outfile);
    if (!out) fail("pcap_dump_open", pcap_geterr(p));
    fprintf(stderr, "listening on %s\n", device);

    unsigned long seen = 0;
    int idle_ms = 0;
    while (!stop && seen < count && idle_ms < idle * 1000) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 100);
        if (ready < 0 && errno != EINTR) fail("poll", strerror(errno));
        int got = 0;
        for (;;) {
            struct pcap_pkthdr *header;
            const u_char *data;
            int rc = pcap_next_ex(p, &header, &data);
            if (rc == 0) break;
            if (rc < 0) fail("pcap_next_ex", pcap_geterr(p));
            pcap_dump((u_char *)out, header, data);
            got = 1;
            if (++seen >= count) break;
        }
        idle_ms = got ? 0 : idle_ms + 100;
    }
    struct pcap_stat st;
    if (pcap_stats(p, &st) < 0) fail("pcap_stats", pcap_geterr(p));
    pcap_dump_close(out);
    pcap_close(p);
    fprintf(stderr, "%lu packets captured\n%u packets received by filter\n%u packets dropped by kernel\n", seen, st.ps_recv, st.ps_drop);
    return 0;
}
