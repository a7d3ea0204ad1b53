import WirecapEngine

/// One forwarding queue's counters: what its capture queue received (by the engine) and what its
/// forwarding thread did with the frames it was lent.
///
/// The conservation law `received == forwarded + verdictDrops + tooBig + txErrors +
/// deliveryDrops + inFlight` holds per queue without offloading. With offloading a queue's
/// thread forwards chunks its buddies captured, so the law holds for the total only.
public struct ForwardQueueStatistics: Sendable, Equatable {
    public var queue: Int
    /// The engine's counters of the capture queue (`received`, `captureDrops`, the pool, ...).
    public var capture: QueueStatistics
    public var forwarded: UInt64
    public var verdictDrops: UInt64
    public var tooBig: UInt64
    public var txRingFullWaits: UInt64
    public var txErrors: UInt64
    /// Frames put into the TX ring that the kernel has not sent yet.
    public var inTransmitRing: UInt64

    public var received: UInt64 { capture.received }
    public var captureDrops: UInt64 { capture.captureDrops }
    /// Accepted by the kernel and not yet forwarded or dropped: in the RX ring, in chunks waiting
    /// or being walked, in the TX ring.
    public var inFlight: UInt64 { capture.inFlight + inTransmitRing }
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
    /// The law on the totals: holds with offloading too.
    public var isConserved: Bool {
        received == forwarded + verdictDrops + tooBig + txErrors + deliveryDrops + inFlight
    }
    /// The same law on every queue (without offloading), and on the total.
    public var isConservedPerQueue: Bool { isConserved && queues.allSatisfy(\.isConserved) }
}
