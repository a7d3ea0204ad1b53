import WirecapEngine

/// Counts how often each sequence number of a `SequencedFrame` run was captured, and which
/// frames came back altered: the check behind "every frame exactly once, with identical bytes".
///
/// Each queue's handler writes its own slots; the slot of a sequence number is touched by the
/// one queue that captured it (twice only if the frame was duplicated, which is what we count),
/// so no lock is needed. Read the results after the capture threads have stopped.
public final class SequenceLedger: @unchecked Sendable {
    public let expected: Int
    public let frames: SequencedFrame
    public let compareBytes: Bool
    let seen: UnsafeMutablePointer<UInt8>
    let perQueue: UnsafeMutablePointer<QueueTally>
    let queues: Int

    struct QueueTally {
        var matched = 0
        var foreign = 0
        var altered = 0
    }

    public init(expected: Int, frames: SequencedFrame, queues: Int, compareBytes: Bool) {
        self.expected = expected
        self.frames = frames
        self.compareBytes = compareBytes
        self.queues = queues
        seen = .allocate(capacity: expected)
        seen.initialize(repeating: 0, count: expected)
        perQueue = .allocate(capacity: queues)
        perQueue.initialize(repeating: QueueTally(), count: queues)
    }

    deinit {
        seen.deallocate()
        perQueue.deallocate()
    }

    public struct Verdict: Sendable, CustomStringConvertible {
        public var captured = 0
        public var missing = 0
        public var duplicated = 0
        public var foreign = 0
        public var altered = 0
        public var perQueue: [Int] = []
        public var exactlyOnce: Bool { missing == 0 && duplicated == 0 && altered == 0 }
        public var description: String {
            "captured \(captured), missing \(missing), duplicated \(duplicated), altered \(altered), foreign \(foreign)"
        }
    }

    public func verdict() -> Verdict {
        var v = Verdict()
        for i in 0..<expected {
            let n = Int(seen[i])
            if n == 0 { v.missing += 1 }
            if n > 1 { v.duplicated += n - 1 }
        }
        for q in 0..<queues {
            v.captured += perQueue[q].matched
            v.foreign += perQueue[q].foreign
            v.altered += perQueue[q].altered
            v.perQueue.append(perQueue[q].matched)
        }
        return v
    }

    public func handler(queue: Int) -> Handler { Handler(ledger: self, queue: queue) }

    /// The capture handler that feeds the ledger.
    public struct Handler: PacketHandler {
        let ledger: SequenceLedger
        let queue: Int
        var expectedBytes: [UInt8]

        init(ledger: SequenceLedger, queue: Int) {
            self.ledger = ledger
            self.queue = queue
            expectedBytes = [UInt8](repeating: 0, count: ledger.frames.size)
        }

        public mutating func handle(_ packet: Packet) {
            guard let sequence = SequencedFrame.sequence(of: packet.bytes), sequence < UInt64(ledger.expected) else {
                ledger.perQueue[queue].foreign += 1
                return
            }
            let slot = ledger.seen + Int(sequence)
            slot.pointee = slot.pointee &+ 1
            ledger.perQueue[queue].matched += 1
            if ledger.compareBytes {
                let frames = ledger.frames
                let same = expectedBytes.withUnsafeMutableBytes { expected in
                    frames.write(sequence: sequence, into: expected)
                    return packet.bytes.count == expected.count && packet.wireLength == expected.count
                        && memcmp(packet.bytes.baseAddress!, expected.baseAddress!, expected.count) == 0
                }
                if !same { ledger.perQueue[queue].altered += 1 }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
