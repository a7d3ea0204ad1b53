// A libpcap reader in the style of Suricata's pcap source (source-pcap.c): pcap_create +
// pcap_set_* + pcap_activate, a blocking handle read with pcap_dispatch(64) in a loop, and
// pcap_stats once a second for its counters. Plain libpcap code: the tests run it with
// LD_PRELOAD=libwirecap-pcap.so on a wirecap device.
//
// Usage: suricata-style-reader DEVICE FILTER OUTFILE COUNT [IDLE_SECONDS]
// Writes every packet to OUTFILE (pcap_dump), stops after COUNT packets, on SIGINT/SIGTERM, or
// after IDLE_SECONDS (default 10) without one; prints "listening on DEVICE" once ready, a
// "stats recv=R drop=D ifdrop=I" line a second, and the totals at the end.
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop;
static pcap_t *handle;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
    pcap_breakloop(handle);
}

static void fail(const char *what, const char *message) {
    fprintf(stderr, "suricata-style-reader: %s: %s\n", what, message);
    exit(1);
}

struct state {
    pcap_dumper_t *out;
    unsigned long seen;
};

static void callback(u_char *user, const struct pcap_pkthdr *header, const u_char *data) {
    struct state *s = (struct state *)user;
    pcap_dump((u_char *)s->out, header, data);
    s->seen++;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DEVICE FILTER OUTFILE COUNT [IDLE_SECONDS]\n", argv[0]);
        return 2;
    }
    const char *device = argv[1], *filter = argv[2], *outfile = argv[3];
    unsigned long count = strtoul(argv[4], NULL, 10);
    double idle = argc > 5 ? atof(argv[5]) : 10;
    char errbuf[PCAP_ERRBUF_SIZE];
    handle = pcap_create(device, errbuf);
    if (!handle) fail("pcap_create", errbuf);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (pcap_set_snaplen(handle, 65535) || pcap_set_promisc(handle, 1) || pcap_set_timeout(handle, 100) ||
        pcap_set_buffer_size(handle, 8 << 20))
        fail("pcap_set_*", pcap_geterr(handle));
    if (pcap_activate(handle) < 0) fail("pcap_activate", pcap_geterr(handle));
    if (pcap_datalink(handle) != DLT_EN10MB) fail("pcap_datalink", "not Ethernet");
    struct bpf_program code;
    if (pcap_compile(handle, &code, filter, 1, PCAP_NETMASK_UNKNOWN) < 0) fail("pcap_compile", pcap_geterr(handle));
    if (pcap_setfilter(handle, &code) < 0) fail("pcap_setfilter", pcap_geterr(handle));
    pcap_freecode(&code);
    struct state s = {.out = pcap_dump_open(handle, outfile)};
    if (!s.out) fail("pcap_dump_open", pcap_geterr(handle));
    fprintf(stderr, "listening on %s\n", device);

    double last_packet = now(), last_stats = now();
    while (!stop && s.seen < count && now() - last_packet < idle) {
        unsigned long before = s.seen;
        int rc = pcap_dispatch(handle, 64, callback, (u_char *)&s);
        if (rc == PCAP_ERROR_BREAK) break;
        if (rc < 0) fail("pcap_dispatch", pcap_geterr(handle));
        if (s.seen > before) last_packet = now();
        if (now() - last_stats >= 1) {
            struct pcap_stat st;
            if (pcap_stats(handle, &st) < 0) fail("pcap_stats", pcap_geterr(handle));
            fprintf(stderr, "stats recv=%u drop=%u ifdrop=%u\n", st.ps_recv, st.ps_drop, st.ps_ifdrop);
            last_stats = now();
        }
    }
    struct pcap_stat st;
    if (pcap_stats(handle, &st) < 0) fail("pcap_stats", pcap_geterr(handle));
    pcap_dump_close(s.out);
    pcap_close(handle);
    fprintf(stderr, "%lu packets captured\n%u packets received by filter\n%u packets dropped by kernel\n", s.seen, st.ps_recv, st.ps_drop);
    return 0;
}
