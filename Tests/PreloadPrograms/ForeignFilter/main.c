// Sets a filter compiled on another handle (pcap_open_dead), as some tools do, and in memory
// that first held a program the capture's own handle compiled: the foreign instructions are
// copied over the capture's own program (the two filters must compile to the same length), as
// when a freed program's memory is reused. The filter installed must be the one given, whatever
// its address.
//
// Usage: foreign-filter-reader DEVICE OWN_FILTER FOREIGN_FILTER COUNT [IDLE_SECONDS]
// Prints "listening on DEVICE", then one line per packet: its UDP source port. Ends after
// COUNT packets or IDLE_SECONDS without one.
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what, const char *message) {
    fprintf(stderr, "foreign-filter-reader: %s: %s\n", what, message);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DEVICE OWN_FILTER FOREIGN_FILTER COUNT [IDLE_SECONDS]\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_create(argv[1], errbuf);
    if (!p) fail("pcap_create", errbuf);
    if (pcap_set_timeout(p, 100) || pcap_activate(p) < 0) fail("pcap_activate", pcap_geterr(p));
    struct bpf_program own, foreign;
    if (pcap_compile(p, &own, argv[2], 1, PCAP_NETMASK_UNKNOWN) < 0) fail("pcap_compile", pcap_geterr(p));
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    if (pcap_compile(dead, &foreign, argv[3], 1, PCAP_NETMASK_UNKNOWN) < 0) fail("pcap_compile (dead)", pcap_geterr(dead));
    if (foreign.bf_len != own.bf_len) fail("usage", "the two filters must compile to programs of the same length");
    memcpy(own.bf_insns, foreign.bf_insns, own.bf_len * sizeof *own.bf_insns);
    if (pcap_setfilter(p, &own) < 0) fail("pcap_setfilter", pcap_geterr(p));
    pcap_freecode(&own);
    pcap_freecode(&foreign);
    pcap_close(dead);
    fprintf(stderr, "listening on %s\n", argv[1]);
    unsigned long count = strtoul(argv[4], NULL, 10), seen = 0;
    int idle = argc > 5 ? atoi(argv[5]) : 10, idle_ticks = 0;
    while (seen < count && idle_ticks < idle * 10) {
        struct pcap_pkthdr *header;
        const u_char *data;
        int rc = pcap_next_ex(p, &header, &data);
        if (rc < 0) fail("pcap_next_ex", pcap_geterr(p));
        if (rc == 0) { idle_ticks++; continue; }
        idle_ticks = 0;
        seen++;
        // Ethernet 14 + IPv4 20 (the sender's frames have no options): the UDP source port.
        if (header->caplen >= 36) printf("%u\n", (unsigned)(data[34] << 8 | data[35]));
    }
    pcap_close(p);
    fprintf(stderr, "%lu packets captured\n", seen);
    return 0;
}
