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
///
/// With one queue there is nothing to merge: the queue's thread writes each packet straight to
/// the file (`direct`), as before the merge existed, without copying it into a lane first.
final class CaptureSink: @unchecked Sendable {
    // @unchecked: `direct` is written only by the one queue's thread (one engine at a time, with
    // --reconnect) and closed by `finish` after every engine has stopped.
    let ordered: TimeOrderedWriter?
    let direct: SavefileWriter?
    let limit: UInt64?
    /// Without -w, or with one queue: packets seen (written, with -w), past the limit too
    /// without -w.
    private let counted = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - writer: the -w file, if any.
    ///   - queues: more than one: written through a `TimeOrderedWriter` that `order` makes.
    init(writer: SavefileWriter?, queues: Int, limit: Int?, order: (SavefileWriter) -> TimeOrderedWriter) {
        ordered = queues > 1 ? writer.map(order) : nil
        direct = queues > 1 ? nil : writer
        self.limit = limit.map(UInt64.init)
    }

    /// With one queue and -w: how many more packets -c lets the file take.
    var remaining: UInt64 {
        guard let limit else { return .max }
        return limit - min(limit, counted.load(ordering: .relaxed))
    }

    /// Without -w, or -w from one queue: adds a block's packets. Stops `control`'s capture when
    /// they reach the -c count.
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
        if let direct { try direct.close() }
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

/// -w with one queue: each packet straight to the file on the queue's thread, up to -c.
struct DirectSinkHandler: PacketHandler {
    let writer: SavefileWriter
    let sink: CaptureSink
    let control: CaptureControl
    var remaining: UInt64
    var pending = 0

    init(sink: CaptureSink, control: CaptureControl) {
        writer = sink.direct!
        self.sink = sink
        self.control = control
        remaining = sink.remaining
    }

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        guard remaining > 0 else { return }
        writer.write(packet)
        remaining -= 1
        pending &+= 1
    }

    mutating func blockDone(queue: Int) {
        if pending > 0 {
            sink.count(pending, control: control)
            pending = 0
        }
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
