#ifndef CWIRECAPPCAP_SHIM_H
#define CWIRECAPPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
