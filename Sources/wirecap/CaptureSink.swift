import Synchronization
import WirecapEngine
import WirecapSavefile

/// Where `wirecap capture` puts packets: with -w, one file written in time order from every
/// queue (`TimeOrderedWriter`); the -c count.
///
/// The queues share only the file and the count. The work on a packet (--work-ns, spin or sleep)
/// runs on its queue's own thread outside any lock: handlers copy packets into their queue's
/// lane, or count them, without a lock, and commit once per block. With -w the commit takes the
/// writer's lock once per block and writes what is in time order; without it, the count is one
/// atomic add per block. Holding a lock across the block, as this sink once did, made N queues
/// do their work one at a time.
final class CaptureSink: Sendable {
    let ordered: TimeOrderedWriter?
    let limit: UInt64?
    /// Without -w: packets seen, past the limit too.
    private let counted = Atomic<UInt64>(0)

    init(ordered: TimeOrderedWriter?, limit: Int?) {
        self.ordered = ordered
        self.limit = limit.map(UInt64.init)
    }

    /// Without -w: adds a block's packets. Stops `control`'s capture when they reach the -c count.
    func count(_ packets: Int, control: CaptureControl) {
        let before = counted.add(UInt64(packets), ordering: .relaxed).oldValue
        if let limit, before < limit, before + UInt64(packets) >= limit { control.requestStop() }
    }

    /// Packets written to -w, or counted without it: never more than -c.
    var packetsCaptured: UInt64 {
        if let ordered { return ordered.written }
        return min(counted.load(ordering: .relaxed), limit ?? .max)
    }

    /// Whether the -c count is reached: then the capture stops.
    var limitReached: Bool {
        if let ordered { return ordered.limitReached }
        return limit.map { counted.load(ordering: .relaxed) >= $0 } ?? false
    }

    /// Packets -w wrote after a later one: a queue fell more than the reorder window behind.
    var late: UInt64 { ordered?.late ?? 0 }

    /// With -w: writes what waited only for a queue that has been quiet for the window. Called
    /// on every turn of the main loop, since a quiet queue commits nothing.
    func expire() {
        ordered?.expire(now: TimeOrderedWriter.now())
    }

    /// Writes everything still held and closes the file, once every engine is stopped.
    func finish() throws(SavefileError) {
        guard let ordered else { return }
        ordered.finish()
        try ordered.writer.close()
    }
}

/// -w: a queue's handler. `control` is its own engine's: with --reconnect the sink outlives engines.
struct WritingSinkHandler: PacketHandler {
    var appender: TimeOrderedWriter.Appender
    let ordered: TimeOrderedWriter
    let control: CaptureControl

    init(ordered: TimeOrderedWriter, queue: Int, control: CaptureControl) {
        appender = ordered.appender(queue: queue)
        self.ordered = ordered
        self.control = control
    }

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        appender.append(packet)
    }

    mutating func blockDone(queue: Int) {
        if ordered.commit(&appender, now: TimeOrderedWriter.now()) && !control.isStopping { control.requestStop() }
    }
}

/// Without -w: a queue's handler counts.
struct CountingSinkHandler: PacketHandler {
    let sink: CaptureSink
    let control: CaptureControl
    var pending = 0

    init(sink: CaptureSink, control: CaptureControl) {
        self.sink = sink
        self.control = control
    }

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        pending &+= 1
    }

    mutating func blockDone(queue: Int) {
        if pending > 0 {
            sink.count(pending, control: control)
            pending = 0
        }
    }
}
