#define _GNU_SOURCE
#include "CWirecapPcapABI.h"
#include <dlfcn.h>
#include <string.h>

struct CWirecapPcapABI_libpcap CWirecapPcapABI_real;

#define RESOLVE(member, name) CWirecapPcapABI_real.member = dlsym(RTLD_NEXT, name)

__attribute__((constructor)) static void CWirecapPcapABI_resolve(void) {
    RESOLVE(create, "pcap_create");
    RESOLVE(open_live, "pcap_open_live");
    RESOLVE(open_dead_with_tstamp_precision, "pcap_open_dead_with_tstamp_precision");
    RESOLVE(activate, "pcap_activate");
    RESOLVE(close, "pcap_close");
    RESOLVE(set_snaplen, "pcap_set_snaplen");
    RESOLVE(set_promisc, "pcap_set_promisc");
    RESOLVE(set_timeout, "pcap_set_timeout");
    RESOLVE(set_buffer_size, "pcap_set_buffer_size");
    RESOLVE(set_immediate_mode, "pcap_set_immediate_mode");
    RESOLVE(set_tstamp_precision, "pcap_set_tstamp_precision");
    RESOLVE(get_tstamp_precision, "pcap_get_tstamp_precision");
    RESOLVE(set_tstamp_type, "pcap_set_tstamp_type");
    RESOLVE(list_tstamp_types, "pcap_list_tstamp_types");
    RESOLVE(set_rfmon, "pcap_set_rfmon");
    RESOLVE(can_set_rfmon, "pcap_can_set_rfmon");
    RESOLVE(set_protocol_linux, "pcap_set_protocol_linux");
    RESOLVE(compile, "pcap_compile");
    RESOLVE(setfilter, "pcap_setfilter");
    RESOLVE(loop, "pcap_loop");
    RESOLVE(dispatch, "pcap_dispatch");
    RESOLVE(next_ex, "pcap_next_ex");
    RESOLVE(next, "pcap_next");
    RESOLVE(breakloop, "pcap_breakloop");
    RESOLVE(stats, "pcap_stats");
    RESOLVE(datalink, "pcap_datalink");
    RESOLVE(list_datalinks, "pcap_list_datalinks");
    RESOLVE(set_datalink, "pcap_set_datalink");
    RESOLVE(snapshot, "pcap_snapshot");
    RESOLVE(setdirection, "pcap_setdirection");
    RESOLVE(get_selectable_fd, "pcap_get_selectable_fd");
    RESOLVE(fileno, "pcap_fileno");
    RESOLVE(setnonblock, "pcap_setnonblock");
    RESOLVE(getnonblock, "pcap_getnonblock");
    RESOLVE(inject, "pcap_inject");
    RESOLVE(sendpacket, "pcap_sendpacket");
    RESOLVE(dump_open, "pcap_dump_open");
    RESOLVE(dump_open_append, "pcap_dump_open_append");
    RESOLVE(dump_fopen, "pcap_dump_fopen");
    RESOLVE(findalldevs, "pcap_findalldevs");
    RESOLVE(lookupnet, "pcap_lookupnet");
    RESOLVE(geterr, "pcap_geterr");
}

int CWirecapPcapABI_found(void) {
    void *const *entries = (void *const *)&CWirecapPcapABI_real;
    for (size_t i = 0; i < sizeof CWirecapPcapABI_real / sizeof(void *); i++) {
        if (entries[i] == NULL) return 0;
    }
    return 1;
}

void CWirecapPcapABI_copy_error(char *errbuf, const char *message) {
    if (errbuf == NULL) return;
    strncpy(errbuf, message, PCAP_ERRBUF_SIZE - 1);
    errbuf[PCAP_ERRBUF_SIZE - 1] = '\0';
}

void CWirecapPcapABI_set_error(pcap_t *p, const char *message) {
    if (p == NULL || CWirecapPcapABI_real.geterr == NULL) return;
    CWirecapPcapABI_copy_error(CWirecapPcapABI_real.geterr(p), message);
}

#define CWIRECAPPCAPABI_SLOTS 256
static const pcap_t *registered_handles[CWIRECAPPCAPABI_SLOTS];
static void *registered_states[CWIRECAPPCAPABI_SLOTS];
static int registered_count;

// A slot's state is written before its handle (release) and read after it (acquire), so a
// lookup that finds a handle finds its state.
int CWirecapPcapABI_register(const pcap_t *p, void *state) {
    for (int i = 0; i < CWIRECAPPCAPABI_SLOTS; i++) {
        if (__atomic_load_n(&registered_handles[i], __ATOMIC_ACQUIRE) != NULL) continue;
        __atomic_store_n(&registered_states[i], state, __ATOMIC_RELAXED);
        const pcap_t *expected = NULL;
        if (__atomic_compare_exchange_n(&registered_handles[i], &expected, p, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
            __atomic_add_fetch(&registered_count, 1, __ATOMIC_RELEASE);
            return 1;
        }
    }
    return 0;
}

void *CWirecapPcapABI_lookup(const pcap_t *p) {
    if (p == NULL || __atomic_load_n(&registered_count, __ATOMIC_ACQUIRE) == 0) return NULL;
    for (int i = 0; i < CWIRECAPPCAPABI_SLOTS; i++) {
        if (__atomic_load_n(&registered_handles[i], __ATOMIC_ACQUIRE) == p) return __atomic_load_n(&registered_states[i], __ATOMIC_RELAXED);
    }
    return NULL;
}

void *CWirecapPcapABI_unregister(const pcap_t *p) {
    for (int i = 0; i < CWIRECAPPCAPABI_SLOTS; i++) {
        if (__atomic_load_n(&registered_handles[i], __ATOMIC_ACQUIRE) != p) continue;
        void *state = __atomic_load_n(&registered_states[i], __ATOMIC_RELAXED);
        __atomic_store_n(&registered_handles[i], NULL, __ATOMIC_RELEASE);
        __atomic_sub_fetch(&registered_count, 1, __ATOMIC_RELEASE);
        return state;
    }
    return NULL;
}
