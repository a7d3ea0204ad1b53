import CWirecapPcapABI
import Glibc
import WirecapPcap

// Reading packets: pcap_loop, pcap_dispatch, pcap_next_ex, pcap_next, pcap_breakloop, and the
// non-blocking mode with its selectable descriptor. A wirecap handle reads every queue.

/// What libpcap returns for a read the facade ended: the count, or PCAP_ERROR_BREAK for a
/// pcap_breakloop before anything was read (pcap_dispatch), or always (pcap_loop).
func readResult(_ result: LoopResult, loop: Bool) -> Int32 {
    if result.interrupted && (loop || result.processed == 0) { return PCAP_ERROR_BREAK }
    return loop ? 0 : Int32(clamping: result.processed)
}

@_cdecl("pcap_loop")
public func wirecap_pcap_loop(_ p: OpaquePointer?, _ count: Int32, _ callback: pcap_handler?, _ user: UnsafeMutablePointer<u_char>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.loop(p, count, callback, user) }
    guard let callback else { return handle.fail(PCAP_ERROR, "\(handle.name): pcap_loop needs a callback") }
    var handler = CallbackHandler(callback: callback, user: user, nanoseconds: handle.options.precision == .nano)
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        readResult(try live.loop(count: Int(count), handler: &handler), loop: true)
    }
}

@_cdecl("pcap_dispatch")
public func wirecap_pcap_dispatch(_ p: OpaquePointer?, _ count: Int32, _ callback: pcap_handler?, _ user: UnsafeMutablePointer<u_char>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.dispatch(p, count, callback, user) }
    guard let callback else { return handle.fail(PCAP_ERROR, "\(handle.name): pcap_dispatch needs a callback") }
    var handler = CallbackHandler(callback: callback, user: user, nanoseconds: handle.options.precision == .nano)
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        readResult(try live.dispatch(count: Int(count), handler: &handler), loop: false)
    }
}

/// Copies one packet into the handle's buffer (allocated once, at activation) and its header:
/// pcap_next_ex's read, with no allocation per packet.
struct CopyingHandler: PacketHandler {
    let buffer: UnsafeMutableRawBufferPointer
    let nanoseconds: Bool
    var header = pcap_pkthdr()

    mutating func handle(_ packet: Packet) {
        let count = min(packet.bytes.count, buffer.count)
        buffer.baseAddress!.copyMemory(from: packet.bytes.baseAddress!, byteCount: count)
        header = pcap_pkthdr(
            ts: timeval(tv_sec: Int(packet.seconds), tv_usec: Int(nanoseconds ? packet.nanoseconds : packet.nanoseconds / 1000)),
            caplen: UInt32(count), len: UInt32(truncatingIfNeeded: packet.wireLength))
    }

    mutating func blockDone(queue: Int) {}
}

/// The next packet into the handle's own storage (valid until the next read, as libpcap's):
/// 1 with a packet, 0 when the timeout passed or a non-blocking handle had none, -1 on error.
func readNext(_ handle: PreloadHandle) -> Int32 {
    handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        var copier = CopyingHandler(buffer: handle.nextBuffer, nanoseconds: handle.options.precision == .nano)
        guard try live.dispatch(count: 1, handler: &copier).processed == 1 else { return 0 }
        handle.nextHeader.pointee = copier.header
        return 1
    }
}

@_cdecl("pcap_next_ex")
public func wirecap_pcap_next_ex(
    _ p: OpaquePointer?, _ header: UnsafeMutablePointer<UnsafeMutablePointer<pcap_pkthdr>?>?, _ data: UnsafeMutablePointer<UnsafePointer<u_char>?>?
) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.next_ex(p, header, data) }
    let status = readNext(handle)
    guard status == 1 else { return status }
    header?.pointee = handle.nextHeader
    data?.pointee = UnsafePointer(handle.nextBuffer.baseAddress?.assumingMemoryBound(to: u_char.self))
    return 1
}

@_cdecl("pcap_next")
public func wirecap_pcap_next(_ p: OpaquePointer?, _ header: UnsafeMutablePointer<pcap_pkthdr>?) -> UnsafePointer<u_char>? {
    guard let handle = Handles.find(p) else { return libpcap.pointee.next(p, header) }
    guard readNext(handle) == 1 else { return nil }
    header?.pointee = handle.nextHeader.pointee
    return UnsafePointer(handle.nextBuffer.baseAddress?.assumingMemoryBound(to: u_char.self))
}

@_cdecl("pcap_breakloop")
public func wirecap_pcap_breakloop(_ p: OpaquePointer?) {
    guard let handle = Handles.find(p) else { return libpcap.pointee.breakloop(p) }
    handle.handle?.breakLoop()
}

@_cdecl("pcap_get_selectable_fd")
public func wirecap_pcap_get_selectable_fd(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.get_selectable_fd(p) }
    return handle.live(-1) { (live) throws(PcapError) in try live.selectableFileDescriptor }
}

/// The descriptor a program may select on: the same as pcap_get_selectable_fd (readable when a
/// chunk waits), since a wirecap handle has no one socket.
@_cdecl("pcap_fileno")
public func wirecap_pcap_fileno(_ p: OpaquePointer?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.fileno(p) }
    return handle.live(-1) { (live) throws(PcapError) in try live.selectableFileDescriptor }
}

@_cdecl("pcap_setnonblock")
public func wirecap_pcap_setnonblock(_ p: OpaquePointer?, _ nonblock: Int32, _ errbuf: UnsafeMutablePointer<CChar>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.setnonblock(p, nonblock, errbuf) }
    guard handle.isActivated else {
        handle.nonblocking = nonblock != 0
        return 0
    }
    let status = handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        try live.setNonblocking(nonblock != 0)
        return 0
    }
    if status != 0 { CWirecapPcapABI_copy_error(errbuf, realError(handle.dead)) }
    return status
}

@_cdecl("pcap_getnonblock")
public func wirecap_pcap_getnonblock(_ p: OpaquePointer?, _ errbuf: UnsafeMutablePointer<CChar>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.getnonblock(p, errbuf) }
    guard handle.isActivated else { return handle.nonblocking ? 1 : 0 }
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in try live.isNonblocking ? 1 : 0 }
}
