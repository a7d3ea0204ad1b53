import Testing
import WirecapEngine
@testable import WirecapLab
import WirecapSandbox

/// The reorder metric on orders whose answer is known.
@Suite("lab: per-flow order")
struct FlowOrderTests {
    struct Nothing: PacketHandler {
        mutating func handle(_ packet: Packet) {}
    }

    let frames = SequencedFrame(flows: 2, size: 64)

    func feed<H: PacketHandler>(_ handler: inout H, _ sequences: [UInt64]) {
        for s in sequences {
            frames.bytes(sequence: s).withUnsafeBytes { handler.handle(Packet(bytes: $0, wireLength: $0.count, seconds: 0, nanoseconds: 0, queue: 0)) }
        }
    }

    @Test("a buddy that processes an owner's later chunk first reorders the earlier chunk's frames; restoring by chunk sequence undoes it")
    func offloadedChunk() {
        // Queue 0 captured chunk 0 (frames 0...3) and chunk 1 (4...7); flows alternate (s % 2).
        // The buddy (slot 1) processed chunk 1 before the owner's reader (slot 0) got to chunk 0.
        let order = FlowOrder(frames: frames, expected: 8, slots: 2)
        var owner = order.handler(slot: 0, inner: Nothing())
        var buddy = order.handler(slot: 1, inner: Nothing())
        buddy.chunkBegins(owner: 0, sequence: 1)
        feed(&buddy, [4, 5, 6, 7])
        owner.chunkBegins(owner: 0, sequence: 0)
        feed(&owner, [0, 1, 2, 3])
        #expect(order.reordered == 4, "frames 0...3 each came after a later frame of their flow")
        #expect(order.reorderedAfterRestoring == 0)
        #expect(order.secondHalf(sent: 8) == HalfFigures(offered: 4, lost: 0))
    }

    @Test("packets spilled one by one (rollover) are reordered with nothing to restore by; losses in the second half are counted")
    func spilledPackets() {
        let order = FlowOrder(frames: frames, expected: 10, slots: 2)
        var first = order.handler(slot: 0, inner: Nothing())
        var second = order.handler(slot: 1, inner: Nothing())
        // Flow 0 is 0, 2, 4, 6, 8: the other socket takes 4 and 6 and runs ahead of 0 and 2. Frame 9 is lost.
        feed(&second, [4, 6])
        feed(&first, [0, 1, 2, 3, 5, 7, 8])
        #expect(order.reordered == 2, "frames 0 and 2 came after later frames (4, 6) of their flow; flow 1 kept its order")
        #expect(order.reorderedAfterRestoring == nil, "no handler was told a chunk's owner and sequence")
        #expect(order.secondHalf(sent: 10) == HalfFigures(offered: 5, lost: 1))
        #expect(FlowOrder.reordered([0, 2, 1, 3, 5, 4], flow: { Int($0 % 2) }) == 0, "across flows order does not matter")
        #expect(FlowOrder.reordered([4, 0, 2, 6], flow: { _ in 0 }) == 2)
    }
}
