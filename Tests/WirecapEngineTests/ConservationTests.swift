import Testing
@testable import WirecapEngine

/// `isConserved` must be a check that can fail: each half of the law (the ring, the library)
/// is tested on counters kept apart, so a packet lost anywhere shows.
@Suite("the conservation law can fail")
struct ConservationTests {
    /// Ten packets accepted; `taken` out of the ring, then `processed`, `queued`, `inHandler`.
    static func snapshot(taken: UInt64, processed: UInt64, queued: UInt64 = 0, inHandler: UInt64 = 0) -> QueueStatistics {
        var stats = QueueStatistics(queue: 0)
        stats.received = 10
        stats.taken = taken
        stats.inRing = stats.received >= taken ? stats.received - taken : 0
        stats.processed = processed
        stats.queued = queued
        stats.inHandler = inHandler
        return stats
    }

    @Test("every packet accounted for: conserved, also with some still in the ring, queued or in a handler")
    func conserved() {
        #expect(Self.snapshot(taken: 10, processed: 10).isConserved)
        #expect(Self.snapshot(taken: 7, processed: 3, queued: 2, inHandler: 2).isConserved)
    }

    @Test("a packet taken from the ring and lost uncounted breaks the law")
    func lostAfterTheRing() {
        #expect(!Self.snapshot(taken: 10, processed: 9).isConserved)
        #expect(!Self.snapshot(taken: 7, processed: 3, queued: 2, inHandler: 1).isConserved)
        var counted = Self.snapshot(taken: 10, processed: 9)
        counted.deliveryDrops = 1
        #expect(counted.isConserved, "a delivery drop that is counted is not a loss")
    }

    @Test("more taken than the kernel accepted, or a ring count that disagrees, breaks the law")
    func ringDisagrees() {
        var overTaken = Self.snapshot(taken: 11, processed: 11)
        overTaken.inRing = 0
        #expect(!overTaken.isConserved)
        var wrongRing = Self.snapshot(taken: 8, processed: 8)
        wrongRing.inRing = 3
        #expect(!wrongRing.isConserved)
    }

    @Test("the whole capture is conserved only if every queue is")
    func wholeCapture() {
        let stats = CaptureStatistics(queues: [Self.snapshot(taken: 10, processed: 10), Self.snapshot(taken: 10, processed: 9)])
        #expect(!stats.isConserved)
    }
}

/// The snapshot's own derivation: once the capture thread has finished, `inRing` is counted in
/// the ring's blocks, so a packet the kernel accepted that was neither taken nor left in the ring
/// shows. (Before, `inRing` was always `received - taken`, and this loss read as "in the ring".)
@Suite("a snapshot counts the ring once capture has finished")
struct RingCountTests {
    static func finished(received: UInt64, taken: UInt64, ringCount: UInt64?) -> QueueStatistics {
        var stats = QueueStatistics(queue: 0)
        stats.received = received
        stats.taken = taken
        stats.processed = taken
        stats.settleRing(counted: ringCount)
        return stats
    }

    @Test("a packet accepted by the kernel, not taken and not in the ring, breaks the law")
    func lostInTheRing() {
        #expect(!Self.finished(received: 10, taken: 9, ringCount: 0).isConserved)
        #expect(Self.finished(received: 10, taken: 9, ringCount: 1).isConserved, "one left in the ring at stop is in flight, not lost")
        #expect(Self.finished(received: 10, taken: 9, ringCount: nil).isConserved, "while capturing, the remainder is all that can be known")
        #expect(!Self.finished(received: 10, taken: 11, ringCount: nil).isConserved, "more taken than accepted is never clamped away")
    }
}
