import WirecapEngine

/// One forwarding queue's counters: what its capture queue received (by the engine) and what its
/// forwarding thread did with the frames it was lent.
///
/// Every frame is counted for the queue that captured it, whichever thread decided on it, so the
/// conservation law `received == forwarded + verdictDrops + tooBig + txErrors + deliveryDrops +
/// inFlight` holds per queue, with offloading too.
public struct ForwardQueueStatistics: Sendable, Equatable {
    public var queue: Int
    /// The engine's counters of the capture queue (`received`, `captureDrops`, the pool, ...).
    public var capture: QueueStatistics
    public var forwarded: UInt64
    public var verdictDrops: UInt64
    public var tooBig: UInt64
    public var txRingFullWaits: UInt64
    public var txErrors: UInt64
    /// Frames put into the TX rings that the kernel has not sent yet.
    public var inTransmitRing: UInt64
    /// Frames decided on and waiting for an earlier chunk of this queue to leave first.
    public var parked: UInt64
    /// Chunks that had to wait for an earlier one (offloading let a buddy finish them first).
    public var chunksParked: UInt64
    /// Copies of forwarded frames put on the tap, and copies the tap could not take (outside the
    /// conservation law: a copy is extra).
    public var tapCopies: UInt64
    public var tapDrops: UInt64

    public var received: UInt64 { capture.received }
    public var captureDrops: UInt64 { capture.captureDrops }
    /// Accepted by the kernel and not yet forwarded or dropped: in the RX ring, in chunks waiting,
    /// being walked or parked, in the TX rings.
    public var inFlight: UInt64 { capture.inFlight + parked + inTransmitRing }
    public var isConserved: Bool {
        received == forwarded + verdictDrops + tooBig + txErrors + capture.deliveryDrops + inFlight
    }
}

/// The whole forwarder's counters: per queue and summed.
public struct ForwardStatistics: Sendable, Equatable {
    public var queues: [ForwardQueueStatistics]

    private func sum(_ value: (ForwardQueueStatistics) -> UInt64) -> UInt64 { queues.reduce(0) { $0 + value($1) } }
    public var received: UInt64 { sum(\.received) }
    public var captureDrops: UInt64 { sum(\.captureDrops) }
    public var forwarded: UInt64 { sum(\.forwarded) }
    public var verdictDrops: UInt64 { sum(\.verdictDrops) }
    public var tooBig: UInt64 { sum(\.tooBig) }
    public var txRingFullWaits: UInt64 { sum(\.txRingFullWaits) }
    public var txErrors: UInt64 { sum(\.txErrors) }
    public var deliveryDrops: UInt64 { sum(\.capture.deliveryDrops) }
    public var inFlight: UInt64 { sum(\.inFlight) }
    public var chunksParked: UInt64 { sum(\.chunksParked) }
    public var tapCopies: UInt64 { sum(\.tapCopies) }
    public var tapDrops: UInt64 { sum(\.tapDrops) }
    /// The law on the totals.
    public var isConserved: Bool {
        received == forwarded + verdictDrops + tooBig + txErrors + deliveryDrops + inFlight
    }
    /// The same law on every queue, and on the total.
    public var isConservedPerQueue: Bool { isConserved && queues.allSatisfy(\.isConserved) }
}
