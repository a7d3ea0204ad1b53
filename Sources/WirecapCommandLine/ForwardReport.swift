import Foundation
import WirecapForward

/// The forwarder's `--stats-json` object. Keys are a contract other tools read; add, never rename.
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
    }
    let input: String
    let output: String
    let queues: [Queue]
    let total: Counts
    let conserved: Bool
    let seconds: Double

    init(input: String, output: String, statistics s: ForwardStatistics, seconds: Double) {
        self.input = input
        self.output = output
        queues = s.queues.map { q in
            Queue(
                queue: q.queue,
                counts: Counts(
                    received: q.received, forwarded: q.forwarded, verdictDrops: q.verdictDrops, tooBig: q.tooBig,
                    txRingFullWaits: q.txRingFullWaits, txErrors: q.txErrors, captureDrops: q.captureDrops, inFlight: q.inFlight),
                offloadedOut: q.capture.offloadedOut, offloadedIn: q.capture.offloadedIn)
        }
        total = Counts(
            received: s.received, forwarded: s.forwarded, verdictDrops: s.verdictDrops, tooBig: s.tooBig, txRingFullWaits: s.txRingFullWaits,
            txErrors: s.txErrors, captureDrops: s.captureDrops, inFlight: s.inFlight)
        conserved = s.isConserved
        self.seconds = seconds
    }
}
