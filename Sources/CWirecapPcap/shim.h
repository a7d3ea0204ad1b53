#ifndef CWIRECAPPCAP_SHIM_H
#define CWIRECAPPCAP_SHIM_H
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdio_ext.h>

// glibc locks a FILE on every stdio call once the process has a second thread: three lock
// round trips per packet in pcap_dump (ferror, two fwrites). wirecap serialises writers itself,
// so the dump file is switched to caller-managed locking.
static inline void CWirecapPcap_dump_without_stdio_locks(pcap_dumper_t *dumper) {
    __fsetlocking(pcap_dump_file(dumper), FSETLOCKING_BYCALLER);
}
#endif
