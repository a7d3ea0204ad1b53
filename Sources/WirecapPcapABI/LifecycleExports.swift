import CWirecapPcapABI
import Glibc
import WirecapPcap

// pcap_create, pcap_open_live, pcap_activate, pcap_close and the pcap_set_* family. A name
// without the `wirecap:` prefix, and every handle that is not wirecap's, go to the real libpcap
// unchanged.

/// Makes a wirecap handle for `name` (not activated), or puts the reason in `errbuf`.
func makeHandle(_ name: String, _ errbuf: UnsafeMutablePointer<CChar>?) -> PreloadHandle? {
    guard CWirecapPcapABI_found() != 0 else {
        CWirecapPcapABI_copy_error(errbuf, "\(name): libwirecap-pcap found no libpcap behind it: preload it into a program linked with libpcap")
        return nil
    }
    let device: DeviceName
    do {
        device = try DeviceName(parsing: name)
    } catch {
        CWirecapPcapABI_copy_error(errbuf, error.message)
        return nil
    }
    guard let dead = libpcap.pointee.open_dead_with_tstamp_precision(DLT_EN10MB, 262_144, UInt32(PCAP_TSTAMP_PRECISION_MICRO)) else {
        CWirecapPcapABI_copy_error(errbuf, "\(name): libpcap could not make a handle")
        return nil
    }
    let handle = PreloadHandle(dead: dead, name: name, device: device)
    guard Handles.add(handle) else {
        libpcap.pointee.close(dead)
        CWirecapPcapABI_copy_error(errbuf, "\(name): too many wirecap handles open at once (256): close some first")
        return nil
    }
    return handle
}

@_cdecl("pcap_create")
public func wirecap_pcap_create(_ source: UnsafePointer<CChar>?, _ errbuf: UnsafeMutablePointer<CChar>?) -> OpaquePointer? {
    guard let source, DeviceName.isWirecap(String(cString: source)) else { return libpcap.pointee.create(source, errbuf) }
    return makeHandle(String(cString: source), errbuf)?.dead
}

@_cdecl("pcap_open_live")
public func wirecap_pcap_open_live(
    _ source: UnsafePointer<CChar>?, _ snaplen: Int32, _ promisc: Int32, _ timeout: Int32, _ errbuf: UnsafeMutablePointer<CChar>?
) -> OpaquePointer? {
    guard let source, DeviceName.isWirecap(String(cString: source)) else {
        return libpcap.pointee.open_live(source, snaplen, promisc, timeout, errbuf)
    }
    guard let handle = makeHandle(String(cString: source), errbuf) else { return nil }
    // As libpcap's pcap_open_live: a snap length out of range means the default.
    handle.options.snapLength = snaplen <= 0 || snaplen > 262_144 ? 262_144 : Int(snaplen)
    handle.options.promiscuous = promisc != 0
    handle.options.timeoutMilliseconds = max(0, Int(timeout))
    let status = handle.activate()
    guard status >= 0 else {
        CWirecapPcapABI_copy_error(errbuf, realError(handle.dead))
        Handles.remove(handle)
        handle.close()
        return nil
    }
    return handle.dead
}

@_cdecl("pcap_activate")
public func wirecap_pcap_activate(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.activate(p) }
    return handle.activate()
}

@_cdecl("pcap_close")
public func wirecap_pcap_close(_ p: OpaquePointer?) {
    guard let handle = Handles.find(p) else { return libpcap.pointee.close(p) }
    Handles.remove(handle)
    handle.close()
}

@_cdecl("pcap_set_snaplen")
public func wirecap_pcap_set_snaplen(_ p: OpaquePointer?, _ snaplen: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_snaplen(p, snaplen) }
    // As libpcap: out of range (including 0) means the default.
    return handle.settable { handle.options.snapLength = snaplen <= 0 || snaplen > 262_144 ? 262_144 : Int(snaplen) }
}

@_cdecl("pcap_set_promisc")
public func wirecap_pcap_set_promisc(_ p: OpaquePointer?, _ promisc: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_promisc(p, promisc) }
    return handle.settable { handle.options.promiscuous = promisc != 0 }
}

@_cdecl("pcap_set_timeout")
public func wirecap_pcap_set_timeout(_ p: OpaquePointer?, _ timeout: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_timeout(p, timeout) }
    return handle.settable { handle.options.timeoutMilliseconds = max(0, Int(timeout)) }
}

@_cdecl("pcap_set_buffer_size")
public func wirecap_pcap_set_buffer_size(_ p: OpaquePointer?, _ size: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_buffer_size(p, size) }
    // libpcap ignores a size of 0 or less; the ring's bytes per queue otherwise.
    return handle.settable { if size > 0 { handle.options.bufferSize = Int(size) } }
}

@_cdecl("pcap_set_immediate_mode")
public func wirecap_pcap_set_immediate_mode(_ p: OpaquePointer?, _ immediate: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_immediate_mode(p, immediate) }
    return handle.settable { handle.options.immediate = immediate != 0 }
}

@_cdecl("pcap_set_tstamp_precision")
public func wirecap_pcap_set_tstamp_precision(_ p: OpaquePointer?, _ precision: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_tstamp_precision(p, precision) }
    switch precision {
    case Int32(PCAP_TSTAMP_PRECISION_MICRO): return handle.settable { handle.options.precision = .micro }
    case Int32(PCAP_TSTAMP_PRECISION_NANO): return handle.settable { handle.options.precision = .nano }
    default: return handle.fail(PCAP_ERROR_TSTAMP_PRECISION_NOTSUP, "\(handle.name): timestamp precision \(precision) is not supported")
    }
}

@_cdecl("pcap_get_tstamp_precision")
public func wirecap_pcap_get_tstamp_precision(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.get_tstamp_precision(p) }
    return Int32(handle.options.precision == .nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO)
}

/// Timestamps come from the kernel's clock as packets reach the socket (PCAP_TSTAMP_HOST).
@_cdecl("pcap_set_tstamp_type")
public func wirecap_pcap_set_tstamp_type(_ p: OpaquePointer?, _ type: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_tstamp_type(p, type) }
    guard !handle.isActivated else { return handle.fail(PCAP_ERROR_ACTIVATED, "\(handle.name): options can't be set after the handle is activated") }
    return type == PCAP_TSTAMP_HOST ? 0 : PCAP_WARNING_TSTAMP_TYPE_NOTSUP
}

@_cdecl("pcap_list_tstamp_types")
public func wirecap_pcap_list_tstamp_types(_ p: OpaquePointer?, _ types: UnsafeMutablePointer<UnsafeMutablePointer<Int32>?>?) -> Int32 {
    guard Handles.find(p) != nil else { return libpcap.pointee.list_tstamp_types(p, types) }
    // As libpcap for a device whose type cannot be chosen: none listed.
    types?.pointee = nil
    return 0
}

@_cdecl("pcap_set_rfmon")
public func wirecap_pcap_set_rfmon(_ p: OpaquePointer?, _ rfmon: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_rfmon(p, rfmon) }
    return handle.settable { handle.monitorMode = rfmon != 0 }
}

@_cdecl("pcap_can_set_rfmon")
public func wirecap_pcap_can_set_rfmon(_ p: OpaquePointer?) -> Int32 {
    guard Handles.find(p) != nil else { return libpcap.pointee.can_set_rfmon(p) }
    return 0
}

/// The protocol a Linux socket captures: wirecap's rings take every protocol (ETH_P_ALL); a
/// filter narrows them.
@_cdecl("pcap_set_protocol_linux")
public func wirecap_pcap_set_protocol_linux(_ p: OpaquePointer?, _ protocolNumber: Int32) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.set_protocol_linux(p, protocolNumber) }
    guard protocolNumber == 0 || protocolNumber == 3 else {
        return handle.fail(PCAP_ERROR, "\(handle.name): wirecap captures every protocol: use a filter (e.g. \"ether proto 0x\(String(protocolNumber, radix: 16))\") instead")
    }
    return handle.settable {}
}
