#if canImport(Glibc)
import Glibc
#endif
import WirecapEngine
import WirecapSavefile

/// Where `wirecap capture` puts packets: an optional savefile writer shared by all queues, and
/// the `-c` count. Capture threads take the lock once per block, not per packet.
final class CaptureSink: @unchecked Sendable {
    // @unchecked: `written` and the writer are touched only between lock() and unlock().
    // A Monitor, not a Mutex: the lock is taken at a block's first packet and released in
    // `blockDone`, a later call.
    private let monitor = Monitor()
    private let writer: SavefileWriter?
    private let limit: UInt64?
    // Guarded by `monitor`; no dynamic exclusivity check per packet.
    @exclusivity(unchecked) private var written: UInt64 = 0

    init(writer: SavefileWriter?, limit: Int?) {
        self.writer = writer
        self.limit = limit.map(UInt64.init)
    }

    @inline(__always) func lock() { monitor.lock() }
    @inline(__always) func unlock() { monitor.unlock() }

    /// Called with the lock held. Stops `control`'s capture at the -c count.
    @inline(__always) func accept(_ packet: Packet, control: CaptureControl) {
        if let limit {
            if written >= limit { return }
            writer?.write(packet)
            written += 1
            if written == limit { control.requestStop() }
        } else {
            writer?.write(packet)
            written += 1
        }
    }

    var packetsCaptured: UInt64 {
        lock()
        defer { unlock() }
        return written
    }
}

/// The per-queue handler: holds the sink's lock from the first packet of a block to its end.
/// `control` is its own engine's: with --reconnect the sink outlives engines.
struct SinkHandler: PacketHandler {
    let sink: CaptureSink
    let control: CaptureControl
    var holding = false

    init(sink: CaptureSink, control: CaptureControl) {
        self.sink = sink
        self.control = control
    }

    mutating func handle(_ packet: Packet) {
        if !holding {
            sink.lock()
            holding = true
        }
        sink.accept(packet, control: control)
    }

    mutating func blockDone(queue: Int) {
        if holding {
            sink.unlock()
            holding = false
        }
    }
}
