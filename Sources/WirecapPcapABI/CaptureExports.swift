import CWirecapPcapABI
import Glibc
import WirecapPcap

// What a program asks of a capture besides its packets: statistics, link type, snap length,
// injection, savefiles, and the device list.

@_cdecl("pcap_stats")
public func wirecap_pcap_stats(_ p: OpaquePointer?, _ stats: UnsafeMutablePointer<pcap_stat>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.stats(p, stats) }
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        // Summed over the queues, with libpcap's meaning: received by the filter (drops
        // included), dropped for want of room, dropped by the interface.
        let s = try live.totalStats()
        stats?.pointee.ps_recv = s.received
        stats?.pointee.ps_drop = s.dropped
        stats?.pointee.ps_ifdrop = s.interfaceDropped
        return 0
    }
}

@_cdecl("pcap_datalink")
public func wirecap_pcap_datalink(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.datalink(p) }
    guard handle.isActivated else { return handle.fail(PCAP_ERROR_NOT_ACTIVATED, "\(handle.name): the handle has not been activated") }
    return DLT_EN10MB
}

@_cdecl("pcap_list_datalinks")
public func wirecap_pcap_list_datalinks(_ p: OpaquePointer?, _ list: UnsafeMutablePointer<UnsafeMutablePointer<Int32>?>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.list_datalinks(p, list) }
    guard handle.isActivated else { return handle.fail(PCAP_ERROR_NOT_ACTIVATED, "\(handle.name): the handle has not been activated") }
    // malloc'd, as pcap_free_datalinks (the real one) frees it.
    guard let links = malloc(MemoryLayout<Int32>.size)?.assumingMemoryBound(to: Int32.self) else {
        return handle.fail(PCAP_ERROR, "\(handle.name): out of memory")
    }
    links.pointee = DLT_EN10MB
    list?.pointee = links
    return 1
}

@_cdecl("pcap_set_datalink")
public func wirecap_pcap_set_datalink(_ p: OpaquePointer?, _ link: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_datalink(p, link) }
    guard link == DLT_EN10MB else {
        return handle.fail(PCAP_ERROR, "\(handle.name): wirecap captures Ethernet (DLT_EN10MB) only, not link type \(link)")
    }
    return 0
}

@_cdecl("pcap_snapshot")
public func wirecap_pcap_snapshot(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.snapshot(p) }
    guard handle.isActivated else { return handle.fail(PCAP_ERROR_NOT_ACTIVATED, "\(handle.name): the handle has not been activated") }
    return Int32(clamping: handle.options.snapLength)
}

@_cdecl("pcap_inject")
public func wirecap_pcap_inject(_ p: OpaquePointer?, _ buffer: UnsafeRawPointer?, _ size: Int) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.inject(p, buffer, size) }
    let frame = buffer.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in Int32(clamping: try live.inject(frame)) }
}

@_cdecl("pcap_sendpacket")
public func wirecap_pcap_sendpacket(_ p: OpaquePointer?, _ buffer: UnsafePointer<u_char>?, _ size: Int32) -> Int32 {
    guard Handles.find(p) != nil else { return libpcap.pointee.sendpacket(p, buffer, size) }
    return wirecap_pcap_inject(p, buffer, Int(max(0, size))) >= 0 ? 0 : PCAP_ERROR
}

/// Runs a real libpcap dump call on a dead handle with the capture's link type, snap length and
/// timestamp precision, which is all a savefile's header takes from the handle: the dumper it
/// returns is libpcap's own (a FILE), so pcap_dump, pcap_dump_flush and pcap_dump_close need no
/// wirecap side.
func openDump(_ handle: PreloadHandle, _ open: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
    guard handle.isActivated else {
        handle.fail(PCAP_ERROR_NOT_ACTIVATED, "\(handle.name): the handle has not been activated")
        return nil
    }
    let precision = handle.options.precision == .nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO
    guard let scratch = libpcap.pointee.open_dead_with_tstamp_precision(DLT_EN10MB, Int32(handle.options.snapLength), UInt32(precision)) else {
        handle.fail(PCAP_ERROR, "\(handle.name): libpcap could not make a handle to write with")
        return nil
    }
    defer { libpcap.pointee.close(scratch) }
    guard let dumper = open(scratch) else {
        handle.fail(PCAP_ERROR, realError(scratch))
        return nil
    }
    return dumper
}

@_cdecl("pcap_dump_open")
public func wirecap_pcap_dump_open(_ p: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let handle = Handles.find(p) else { return libpcap.pointee.dump_open(p, path) }
    return openDump(handle) { libpcap.pointee.dump_open($0, path) }
}

@_cdecl("pcap_dump_open_append")
public func wirecap_pcap_dump_open_append(_ p: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> OpaquePointer? {
    guard let handle = Handles.find(p) else { return libpcap.pointee.dump_open_append(p, path) }
    return openDump(handle) { libpcap.pointee.dump_open_append($0, path) }
}

@_cdecl("pcap_dump_fopen")
public func wirecap_pcap_dump_fopen(_ p: OpaquePointer?, _ file: UnsafeMutablePointer<FILE>?) -> OpaquePointer? {
    guard let handle = Handles.find(p) else { return libpcap.pointee.dump_fopen(p, file) }
    return openDump(handle) { libpcap.pointee.dump_fopen($0, file) }
}

/// The real device list, then a `wirecap:NAME` entry for each network interface in it (the
/// pseudo-devices such as "any" have no interface index), allocated as libpcap allocates its
/// own, so the real pcap_freealldevs frees the whole list.
@_cdecl("pcap_findalldevs")
public func wirecap_pcap_findalldevs(_ list: UnsafeMutablePointer<UnsafeMutablePointer<pcap_if_t>?>?, _ errbuf: UnsafeMutablePointer<CChar>?) -> Int32 {
    let status = libpcap.pointee.findalldevs(list, errbuf)
    guard status == 0, let list else { return status }
    var interfaces: [(name: String, flags: bpf_u_int32)] = []
    var last: UnsafeMutablePointer<pcap_if_t>? = nil
    var node = list.pointee
    while let current = node {
        if let name = current.pointee.name, if_nametoindex(name) != 0 { interfaces.append((String(cString: name), current.pointee.flags)) }
        last = current
        node = current.pointee.next
    }
    for interface in interfaces {
        guard let entry = calloc(1, MemoryLayout<pcap_if_t>.size)?.assumingMemoryBound(to: pcap_if_t.self) else { break }
        entry.pointee.name = strdup(DeviceName.prefix + interface.name)
        entry.pointee.description = strdup("wirecap multi-queue capture on \(interface.name) (settings: wirecap:\(interface.name):queues=N,pool=CHUNKS,offload=T)")
        entry.pointee.flags = interface.flags
        if let last { last.pointee.next = entry } else { list.pointee = entry }
        last = entry
    }
    return 0
}

@_cdecl("pcap_lookupnet")
public func wirecap_pcap_lookupnet(
    _ device: UnsafePointer<CChar>?, _ net: UnsafeMutablePointer<bpf_u_int32>?, _ mask: UnsafeMutablePointer<bpf_u_int32>?,
    _ errbuf: UnsafeMutablePointer<CChar>?
) -> Int32 {
    guard let device, DeviceName.isWirecap(String(cString: device)) else { return libpcap.pointee.lookupnet(device, net, mask, errbuf) }
    // The interface's own network, so `ip broadcast` and friends compile as without wirecap.
    guard let parsed = try? DeviceName(parsing: String(cString: device)) else {
        CWirecapPcapABI_copy_error(errbuf, "\(String(cString: device)): not a valid wirecap device name")
        return PCAP_ERROR
    }
    return libpcap.pointee.lookupnet(parsed.interface, net, mask, errbuf)
}
