import FuzzSupport
import WirecapEngine
import WirecapPcap

// Fuzzes the pcap facade's offline handle (PcapHandle.openOffline, libpcap's pcap_t behind it):
// the input is written to a file on tmpfs and opened twice, once per precision, each time read
// to the end another way: at nanoseconds by dispatch with a small count over a PacketHandler
// value (the batches a pcap_dispatch reader sees), then loop with a closure; at microseconds by
// next (copies). Every byte of every packet is touched; datalink, snapshot, stats, the
// selectable descriptor and non-blocking mode are queried; after close every call must throw.
// Any PcapError is fine; a trap, a crash or a packet whose counts disagree is a finding.

nonisolated(unsafe) var inputPath = inputFilePath("offline")
nonisolated(unsafe) var sink: UInt64 = 0

/// Touches every byte handed over and counts the batches.
struct TouchingHandler: PacketHandler {
    var total: UInt64 = 0
    var packets = 0
    var batches = 0

    mutating func handle(_ packet: Packet) {
        packets += 1
        for byte in packet.bytes { total &+= UInt64(byte) }
        total &+= UInt64(packet.wireLength) &+ UInt64(packet.seconds) &+ UInt64(packet.nanoseconds) &+ UInt64(packet.queue)
    }

    mutating func blockDone(queue: Int) { batches += 1 }
}

/// What a handle says about itself; a savefile has no statistics, so `stats` may throw.
func query(_ handle: PcapHandle) -> UInt64 {
    var total = UInt64(truncatingIfNeeded: (try? handle.datalink) ?? 0) &+ UInt64(truncatingIfNeeded: (try? handle.snapshot) ?? 0)
    if let stats = try? handle.stats() { total &+= UInt64(stats.received) &+ UInt64(stats.dropped) &+ UInt64(stats.interfaceDropped) }
    total &+= UInt64(truncatingIfNeeded: (try? handle.selectableFileDescriptor) ?? 0)
    if (try? handle.isNonblocking) == true { total &+= 1 }
    precondition(!handle.isLive)
    return total
}

/// Closes the handle and checks that it is closed for good.
func close(_ handle: PcapHandle) {
    handle.close()
    handle.close()
    do {
        _ = try handle.next()
        preconditionFailure("next() on a closed handle returned")
    } catch {
        precondition(error == .closed, "next() on a closed handle threw \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard writeInput(data, size, to: inputPath) else { return 0 }

    if let handle = try? PcapHandle.openOffline(path: inputPath, precision: .nano) {
        var total = query(handle)
        var handler = TouchingHandler()
        var calls = 0
        // dispatch(count: 3) until it hands over nothing (the end) or throws (a corrupt record).
        while let result = try? handle.dispatch(count: 3, handler: &handler), result.processed > 0 {
            precondition(result.processed <= 3 && !result.interrupted, "dispatch(count: 3) returned \(result)")
            calls += 1
        }
        // The call that throws may have handed over packets before the bad record, and (as
        // pcap_dispatch's -1) does not say how many.
        precondition(handler.packets <= 3 * (calls + 1), "\(handler.packets) packets in \(calls) calls of dispatch(count: 3)")
        // Whatever is left after an error, by the closure form.
        if let rest = try? handle.loop(handler: { packet in handler.handle(packet) }) {
            precondition(!rest.interrupted)
        }
        total &+= handler.total &+ UInt64(handler.batches)
        close(handle)
        sink &+= total
    }

    if let handle = try? PcapHandle.openOffline(path: inputPath, precision: .micro) {
        var total = query(handle)
        while let packet = try? handle.next() {
            precondition(packet.caplen == packet.bytes.count && packet.precision == .micro)
            for byte in packet.bytes { total &+= UInt64(byte) }
            total &+= UInt64(truncatingIfNeeded: packet.len &+ packet.seconds &+ packet.nanoseconds)
        }
        close(handle)
        sink &+= total
    }
    return 0
}
