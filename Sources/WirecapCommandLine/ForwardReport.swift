import Foundation
import WirecapForward

/// The forwarder's `--stats-json` object. Keys are a contract other tools read; add, never rename.
/// The top level describes IN -> OUT, as it always has; with `--bidirectional`, `reverse` holds
/// the same object (without `seconds`) for OUT -> IN.
struct ForwardReport: StatisticsJSON {
    struct Counts: Encodable {
        let received: UInt64
        let forwarded: UInt64
        let verdictDrops: UInt64
        let tooBig: UInt64
        let txRingFullWaits: UInt64
        let txErrors: UInt64
        let captureDrops: UInt64
        let inFlight: UInt64
    }
    struct Queue: Encodable {
        let queue: Int
        let counts: Counts
        let offloadedOut: UInt64
        let offloadedIn: UInt64
        /// Chunks a buddy decided on that waited for their turn (order kept).
        let chunksParked: UInt64
        /// The hybrid pool: RX blocks forwarded from the ring in place, blocks copied into the
        /// pool first (at capture, or later under back-pressure), and the copy rate.
        let blocksLent: UInt64
        let blocksCopied: UInt64
        let blocksCopiedLater: UInt64
        let copyRate: Double
    }
    /// One direction: a forwarder's interfaces, its fanout group on the input and its counts.
    struct Direction: Encodable {
        let input: String
        let output: String
        let fanoutGroup: UInt16
        let queues: [Queue]
        let total: Counts
        let conserved: Bool
        /// Copies sent to the tap, and copies it could not take (0 without a tap).
        let tapCopies: UInt64
        let tapDrops: UInt64

        init(input: String, output: String, fanoutGroup: UInt16, statistics s: ForwardStatistics) {
            self.input = input
            self.output = output
            self.fanoutGroup = fanoutGroup
            queues = s.queues.map { q in
                Queue(
                    queue: q.queue,
                    counts: Counts(
                        received: q.received, forwarded: q.forwarded, verdictDrops: q.verdictDrops, tooBig: q.tooBig,
                        txRingFullWaits: q.txRingFullWaits, txErrors: q.txErrors, captureDrops: q.captureDrops, inFlight: q.inFlight),
                    offloadedOut: q.capture.offloadedOut, offloadedIn: q.capture.offloadedIn, chunksParked: q.chunksParked,
                    blocksLent: q.capture.blocksLent, blocksCopied: q.capture.blocksCopied, blocksCopiedLater: q.capture.blocksCopiedLater,
                    copyRate: q.capture.copyRate)
            }
            total = Counts(
                received: s.received, forwarded: s.forwarded, verdictDrops: s.verdictDrops, tooBig: s.tooBig, txRingFullWaits: s.txRingFullWaits,
                txErrors: s.txErrors, captureDrops: s.captureDrops, inFlight: s.inFlight)
            conserved = s.isConserved
            tapCopies = s.tapCopies
            tapDrops = s.tapDrops
        }
    }
    let forward: Direction
    let reverse: Direction?
    let seconds: Double
    /// --reconnect: forwarders opened again after a lost link, and the seconds without one.
    var reconnects = 0
    var gapSeconds = 0.0

    enum Keys: String, CodingKey { case reverse, seconds, reconnects, gapSeconds }

    /// The forward direction's keys at the top level (where readers of a one-way run find them),
    /// then `reverse` and `seconds` beside them.
    func encode(to encoder: Encoder) throws {
        try forward.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(reverse, forKey: .reverse)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(reconnects, forKey: .reconnects)
        try container.encode(gapSeconds, forKey: .gapSeconds)
    }
}
