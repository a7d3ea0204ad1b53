#ifndef CWIRECAPPCAPABI_H
#define CWIRECAPPCAPABI_H
// The real libpcap behind the preload library (libwirecap-pcap.so): every libpcap function the
// library interposes, and the few it calls on handles of its own, resolved once with
// dlsym(RTLD_NEXT, ...) when the library is loaded, before main() and so before any thread
// or signal handler could need one (pcap_breakloop is called from signal handlers).
#include <pcap/pcap.h>

// The table's members are marked _Nonnull (the library makes no handle unless all were found);
// the other pointers keep C's meaning, unmarked.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wnullability-completeness"

struct CWirecapPcapABI_libpcap {
    pcap_t *(* _Nonnull create)(const char *, char *);
    pcap_t *(* _Nonnull open_live)(const char *, int, int, int, char *);
    pcap_t *(* _Nonnull open_dead_with_tstamp_precision)(int, int, u_int);
    int (* _Nonnull activate)(pcap_t *);
    void (* _Nonnull close)(pcap_t *);
    int (* _Nonnull set_snaplen)(pcap_t *, int);
    int (* _Nonnull set_promisc)(pcap_t *, int);
    int (* _Nonnull set_timeout)(pcap_t *, int);
    int (* _Nonnull set_buffer_size)(pcap_t *, int);
    int (* _Nonnull set_immediate_mode)(pcap_t *, int);
    int (* _Nonnull set_tstamp_precision)(pcap_t *, int);
    int (* _Nonnull get_tstamp_precision)(pcap_t *);
    int (* _Nonnull set_tstamp_type)(pcap_t *, int);
    int (* _Nonnull list_tstamp_types)(pcap_t *, int **);
    int (* _Nonnull set_rfmon)(pcap_t *, int);
    int (* _Nonnull can_set_rfmon)(pcap_t *);
    int (* _Nonnull set_protocol_linux)(pcap_t *, int);
    int (* _Nonnull compile)(pcap_t *, struct bpf_program *, const char *, int, bpf_u_int32);
    int (* _Nonnull setfilter)(pcap_t *, struct bpf_program *);
    int (* _Nonnull loop)(pcap_t *, int, pcap_handler, u_char *);
    int (* _Nonnull dispatch)(pcap_t *, int, pcap_handler, u_char *);
    int (* _Nonnull next_ex)(pcap_t *, struct pcap_pkthdr **, const u_char **);
    const u_char *(* _Nonnull next)(pcap_t *, struct pcap_pkthdr *);
    void (* _Nonnull breakloop)(pcap_t *);
    int (* _Nonnull stats)(pcap_t *, struct pcap_stat *);
    int (* _Nonnull datalink)(pcap_t *);
    int (* _Nonnull list_datalinks)(pcap_t *, int **);
    int (* _Nonnull set_datalink)(pcap_t *, int);
    int (* _Nonnull snapshot)(pcap_t *);
    int (* _Nonnull setdirection)(pcap_t *, pcap_direction_t);
    int (* _Nonnull get_selectable_fd)(pcap_t *);
    int (* _Nonnull fileno)(pcap_t *);
    int (* _Nonnull setnonblock)(pcap_t *, int, char *);
    int (* _Nonnull getnonblock)(pcap_t *, char *);
    int (* _Nonnull inject)(pcap_t *, const void *, size_t);
    int (* _Nonnull sendpacket)(pcap_t *, const u_char *, int);
    pcap_dumper_t *(* _Nonnull dump_open)(pcap_t *, const char *);
    pcap_dumper_t *(* _Nonnull dump_open_append)(pcap_t *, const char *);
    pcap_dumper_t *(* _Nonnull dump_fopen)(pcap_t *, FILE *);
    int (* _Nonnull findalldevs)(pcap_if_t **, char *);
    int (* _Nonnull lookupnet)(const char *, bpf_u_int32 *, bpf_u_int32 *, char *);
    char *(* _Nonnull geterr)(pcap_t *);
};

// Filled by a constructor when the library is loaded, and only read after.
extern struct CWirecapPcapABI_libpcap CWirecapPcapABI_real;
static inline const struct CWirecapPcapABI_libpcap *_Nonnull CWirecapPcapABI_table(void) { return &CWirecapPcapABI_real; }

// Whether every function of the table was found in a libpcap behind the library (not when the
// program was not linked with libpcap, or with one older than 1.10). Until then no wirecap
// handle is made, and nothing in the table is called.
int CWirecapPcapABI_found(void);

// Writes `message` into a handle's error buffer (pcap_geterr's, PCAP_ERRBUF_SIZE bytes), cut to
// fit, so pcap_geterr and pcap_perror, which the library leaves to libpcap, show it.
void CWirecapPcapABI_set_error(pcap_t *p, const char *message);

// Copies `message` into a caller's errbuf (PCAP_ERRBUF_SIZE bytes), cut to fit.
void CWirecapPcapABI_copy_error(char *errbuf, const char *message);

// Which pcap_t pointers are wirecap's: a fixed table of (handle, state) pairs with atomic
// slots, so a lookup takes no lock and is safe in a signal handler (pcap_breakloop). Every
// interposed call on a handle looks it up; with no wirecap handle open it is one atomic load.
// register returns 0 when the table is full; state is the Swift object, retained by the caller.
int CWirecapPcapABI_register(const pcap_t *p, void *state);
void *CWirecapPcapABI_lookup(const pcap_t *p);
void *CWirecapPcapABI_unregister(const pcap_t *p);
#pragma clang diagnostic pop
#endif
