import Synchronization
import WirecapEngine
import WirecapSandbox

/// Per-flow order, measured from the sequence numbers in the frames: how many frames of a flow
/// were processed after a later frame of the same flow. Frames are sent in sequence order and
/// veth keeps each flow's order, so every such frame was reordered by the engine: by the kernel's
/// rollover (single packets of a flow moved to another socket), by offloading (a chunk processed by
/// a buddy while its owner's worker is still on an earlier chunk), or by packet-level spreading.
///
/// Two figures. *In processing order*: one atomic "highest sequence seen" per flow, raised by
/// every handler as it starts on a frame; a frame that finds a higher one was overtaken. *After
/// restoring order by chunk sequence*: what an application gets that puts each owner queue's
/// chunks back in order by their sequence number before reading them, as WireCAP's chunk-level
/// offloading allows and packet-level spilling does not. It is computed from a log of (owner,
/// chunk sequence, position, frame sequence) kept by every handler that is told a chunk's owner
/// and sequence (`chunkBegins`: the pcap facade's readers); other engines have no such figure.
///
/// Also counts the frames of the run's second half that were processed, for the steady-state loss.
final class FlowOrder: @unchecked Sendable {
    // @unchecked: the per-flow maxima are atomics; each handler writes only its own tally and log
    // slot (the ledger's rule), and they are read after every handler has stopped.
    let frames: SequencedFrame
    let expected: Int
    let slots: Int
    /// One cache line per flow and per slot: the queues' threads write them for every packet,
    /// and neighbours in one line would bounce it between the cores under measurement.
    private let highest: UnsafeMutablePointer<FlowMaximum>
    private let tallies: UnsafeMutablePointer<Tally>
    private let logs: UnsafeMutablePointer<[Entry]>

    struct FlowMaximum: ~Copyable {
        let value = Atomic<UInt64>(0)
        private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
    }

    struct Tally {
        var reordered = 0
        var secondHalfProcessed = 0
        var told = false
        private let padding: (Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0)
    }

    /// One processed frame, placed by its chunk.
    struct Entry {
        var owner: Int
        var chunk: UInt64
        var position: Int
        var sequence: UInt64
    }

    init(frames: SequencedFrame, expected: Int, slots: Int) {
        self.frames = frames
        self.expected = expected
        self.slots = max(slots, 1)
        highest = .allocate(capacity: frames.flows)
        for flow in 0..<frames.flows { (highest + flow).initialize(to: FlowMaximum()) }
        tallies = .allocate(capacity: self.slots)
        tallies.initialize(repeating: Tally(), count: self.slots)
        logs = .allocate(capacity: self.slots)
        logs.initialize(repeating: [], count: self.slots)
    }

    deinit {
        highest.deinitialize(count: frames.flows)
        highest.deallocate()
        tallies.deinitialize(count: slots)
        tallies.deallocate()
        logs.deinitialize(count: slots)
        logs.deallocate()
    }

    /// Frames processed after a later frame of their flow, in the order the handlers ran.
    var reordered: Int { (0..<slots).reduce(0) { $0 + tallies[$1].reordered } }

    /// The second half of the run by sequence number: offered (what was sent of it) and lost.
    func secondHalf(sent: Int) -> HalfFigures {
        let half = expected / 2
        let offered = max(0, min(sent, expected) - half)
        let processed = (0..<slots).reduce(0) { $0 + tallies[$1].secondHalfProcessed }
        return HalfFigures(offered: offered, lost: max(0, offered - processed))
    }

    /// Reordered frames after putting each owner's chunks in sequence order, or nil when no
    /// handler was told its chunks' owners and sequences.
    var reorderedAfterRestoring: Int? {
        guard (0..<slots).contains(where: { tallies[$0].told }) else { return nil }
        var all: [Entry] = []
        for slot in 0..<slots { all += logs[slot] }
        all.sort { ($0.owner, $0.chunk, $0.position) < ($1.owner, $1.chunk, $1.position) }
        return Self.reordered(all.map(\.sequence), flow: frames.flow(of:))
    }

    /// Frames that come after a later frame of their flow in `sequences`.
    static func reordered(_ sequences: [UInt64], flow: (UInt64) -> Int) -> Int {
        var highest: [Int: UInt64] = [:]
        var count = 0
        for s in sequences {
            let f = flow(s)
            if let h = highest[f], h > s { count += 1 } else { highest[f] = s }
        }
        return count
    }

    func handler<Inner: PacketHandler>(slot: Int, inner: Inner) -> Handler<Inner> { Handler(order: self, slot: slot, inner: inner) }

    /// Wraps the lab's handler, outermost, so that it sees frames in the order the thread takes
    /// them up and is told each chunk's owner and sequence.
    struct Handler<Inner: PacketHandler>: PacketHandler {
        let order: FlowOrder
        let slot: Int
        var inner: Inner
        var owner = -1
        var chunk: UInt64 = 0
        var position = 0

        @inline(__always)
        mutating func handle(_ packet: Packet) {
            if let sequence = SequencedFrame.sequence(of: packet.bytes), sequence < UInt64(order.expected) {
                let flow = order.frames.flow(of: sequence)
                // Stored as sequence + 1 so that 0 means "none yet".
                let before = order.highest[flow].value.max(sequence + 1, ordering: .relaxed).oldValue
                if before > sequence + 1 { order.tallies[slot].reordered += 1 }
                if sequence >= UInt64(order.expected / 2) { order.tallies[slot].secondHalfProcessed += 1 }
                if owner >= 0 {
                    order.logs[slot].append(Entry(owner: owner, chunk: chunk, position: position, sequence: sequence))
                    position += 1
                }
            }
            inner.handle(packet)
        }

        mutating func blockDone(queue: Int) { inner.blockDone(queue: queue) }

        mutating func chunkBegins(owner: Int, sequence: UInt64) {
            // A chunk resumed part-read keeps its positions going.
            if owner != self.owner || sequence != chunk {
                self.owner = owner
                chunk = sequence
                position = 0
            }
            if !order.tallies[slot].told {
                // Every frame may land in this slot's log: grown once here, not while measuring.
                order.logs[slot].reserveCapacity(order.expected)
                order.tallies[slot].told = true
            }
            inner.chunkBegins(owner: owner, sequence: sequence)
        }
    }
}
