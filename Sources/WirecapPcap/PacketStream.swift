import Dispatch
import Foundation
import Synchronization
import WirecapEngine

extension PcapHandle {
    /// The packets as owned copies, for `for try await` code. A thread of its own reads (a file
    /// with `next()`, a live handle with `dispatch`) and hands copies over, at most `buffer`
    /// ahead of the consumer: when the consumer is slower, the thread waits (and, live, the
    /// pool and then the ring hold the rest, counted as drops if they fill), rather than the
    /// heap growing. Leaving the loop stops the thread; `close()` waits for it, so closing right
    /// after a `break` is safe. `endingAfterIdle`: a live sequence ends when no packet has come
    /// for that long (nil: it ends only with `breakLoop()`, `close()` or the capture). A
    /// truncated file ends the sequence with libpcap's error after the intact records. Copies
    /// allocate: this is the convenient path, `dispatch` and `loop` are the fast one.
    public func packets(buffer: Int = 1024, endingAfterIdle idle: Duration? = nil) -> PacketSequence {
        let control = StreamControl(buffer: buffer)
        let stream = AsyncThrowingStream<OwnedPacket, any Error> { continuation in
            let thread = Thread { [self] in
                do {
                    try produce(into: continuation, control: control, idle: idle)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [self] _ in
                control.stopped.store(true, ordering: .releasing)
                // Free a producer that waits for room, and wake one that waits for packets.
                control.slots.signal()
                breakLoop()
            }
            thread.start()
        }
        return PacketSequence(stream: stream, slots: control.slots)
    }

    /// The producer thread's work: read, copy, wait for room, yield.
    private func produce(
        into continuation: AsyncThrowingStream<OwnedPacket, any Error>.Continuation, control: StreamControl, idle: Duration?
    ) throws {
        let gate = self.gate
        // Waits for room in the consumer's buffer; false once the consumer has gone or the
        // handle was closed.
        let room = { control.room(unlessClosed: gate) }
        if !isLive {
            while !control.stopped.load(ordering: .acquiring), let packet = try next() {
                guard room() else { return }
                continuation.yield(packet)
            }
            return
        }
        try using(reading: true) { (source) throws(PcapError) in
            guard case .live(let reader) = source else { return }
            var handler = StreamingHandler(precision: precision, continuation: continuation, room: room)
            var lastPacket = ContinuousClock.now
            while !handler.gone {
                let remaining = idle.map { $0 - (ContinuousClock.now - lastPacket) }
                if let remaining, remaining <= .zero { return }
                let result = try reader.dispatch(count: -1, handler: &handler, waitingAtMost: remaining)
                if result.interrupted { return }
                if result.processed > 0 {
                    lastPacket = .now
                } else if reader.captureHasEnded {
                    return
                }
            }
        }
    }
}

/// What the consumer side of `packets()` and its producer thread share.
private final class StreamControl: Sendable {
    /// Packets the producer may hand over before the consumer takes one.
    let slots: DispatchSemaphore
    /// The consumer has gone.
    let stopped = Atomic<Bool>(false)

    init(buffer: Int) {
        // Made at 0 and raised to `buffer`, not made at `buffer`: libdispatch traps when a
        // semaphore is freed below the value it was made with, which is where a consumer that
        // leaves with packets still buffered leaves it.
        slots = DispatchSemaphore(value: 0)
        for _ in 0..<max(1, buffer) { slots.signal() }
    }

    /// Waits for room; false once the consumer has gone or the handle was closed (checked every
    /// 10 ms while waiting, so `close()` is never stuck behind a consumer that stopped reading).
    func room(unlessClosed gate: HandleGate) -> Bool {
        while slots.wait(timeout: .now() + .milliseconds(10)) == .timedOut {
            if stopped.load(ordering: .acquiring) || gate.isClosed { return false }
        }
        return !stopped.load(ordering: .acquiring)
    }
}

/// Copies each packet for `packets()` and yields it once there is room.
private struct StreamingHandler: PacketHandler {
    let precision: TimestampPrecision
    let continuation: AsyncThrowingStream<OwnedPacket, any Error>.Continuation
    let room: () -> Bool
    /// The consumer left or the handle closed: the rest of the call's packets are not copied.
    var gone = false

    mutating func handle(_ packet: Packet) {
        guard !gone else { return }
        guard room() else {
            gone = true
            return
        }
        continuation.yield(OwnedPacket(copying: packet, precision: precision))
    }
}

/// What `packets()` returns: the packets in order, each handed over once the consumer asks,
/// with a bounded number in between.
public struct PacketSequence: AsyncSequence, Sendable {
    public typealias Element = OwnedPacket
    let stream: AsyncThrowingStream<OwnedPacket, any Error>
    let slots: DispatchSemaphore

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), slots: slots)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<OwnedPacket, any Error>.AsyncIterator
        let slots: DispatchSemaphore

        public mutating func next() async throws -> OwnedPacket? {
            let packet = try await base.next()
            // One packet fewer in between: room for the producer.
            if packet != nil { slots.signal() }
            return packet
        }
    }
}
