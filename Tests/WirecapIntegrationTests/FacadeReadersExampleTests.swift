import Foundation
import Synchronization
import Testing
import WirecapPcap
import WirecapSandbox

// MARK: the example (quoted in WirecapPcap.docc/WirecapPcap.md, "A reader per queue": keep the two the same)

/// The one result every reader feeds: packets per key, behind a lock.
final class PacketCounts: Sendable {
    private let table = Mutex<[UInt64: Int]>([:])
    func add(_ key: UInt64) { table.withLock { $0[key, default: 0] += 1 } }
    var counts: [UInt64: Int] { table.withLock { $0 } }
}

/// Counts packets by a key of the caller's choosing (a flow, a sequence number) with one reader
/// per queue, each iterated by a child task of one task group, all adding into one table.
/// Returns when every reader has been idle for `idle` (nil: only when the surrounding task is
/// cancelled), then closes the handle.
func countPackets(
    on handle: PcapHandle, endingAfterIdle idle: Duration?, key: @escaping @Sendable ([UInt8]) -> UInt64?
) async throws -> [UInt64: Int] {
    let result = PacketCounts()
    defer { handle.close() }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for reader in handle.queues {
            group.addTask {
                for try await packet in reader.packets(endingAfterIdle: idle) {
                    if let key = key(packet.bytes) { result.add(key) }
                }
            }
        }
        try await group.waitForAll()
    }
    return result.counts
}

// MARK: the test that runs it

extension SandboxSuites {
    @Suite("pcap facade: a reader per queue in a task group (the DocC example)")
    struct FacadeReadersExampleTests {
        static func open(_ sandbox: Sandbox) throws -> PcapHandle {
            var options = PcapHandle.LiveOptions()
            options.queues = 2
            options.snapLength = 2048
            options.timeoutMilliseconds = 50
            return try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
        }

        static func sequence(_ bytes: [UInt8]) -> UInt64? { bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) } }

        @Test("two readers in a task group count every numbered frame exactly once", .timeLimit(.minutes(1)))
        func everyFrameOnce() async throws {
            let sandbox = try Sandbox(queues: 2)
            defer { sandbox.tearDown() }
            let handle = try Self.open(sandbox)
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            let frames = SequencedFrame(flows: 64, size: 64)
            let total = 20_000
            let counting = Task { try await countPackets(on: handle, endingAfterIdle: .seconds(1), key: Self.sequence) }
            let sent = sender.sendSequenced(frames, count: total, rate: 40_000)
            let counts = try await counting.value
            #expect(sent.sent == total)
            let missing = (0..<UInt64(total)).filter { counts[$0] == nil }.count
            let twice = counts.values.filter { $0 > 1 }.count
            print("task-group readers: \(counts.count) of \(total) frames counted, \(missing) missing, \(twice) more than once")
            #expect(counts.count == total && missing == 0 && twice == 0, "every frame counted exactly once")
            #expect(throws: PcapError.closed) { try handle.stats() }
        }

        @Test("cancelling the group mid-stream stops every reader, and the close returns promptly", .timeLimit(.minutes(1)))
        func cancelMidStream() async throws {
            let sandbox = try Sandbox(queues: 2)
            defer { sandbox.tearDown() }
            let handle = try Self.open(sandbox)
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            let frames = SequencedFrame(flows: 64, size: 64)
            // Frames flow the whole time: 3 s at 30,000 a second, on a thread of its own.
            let sending = Thread { _ = sender.sendSequenced(frames, count: 90_000, rate: 30_000) }
            sending.start()
            let counting = Task { try await countPackets(on: handle, endingAfterIdle: nil, key: Self.sequence) }
            // Wait until both readers are counting.
            try await Task.sleep(for: .milliseconds(500))
            let started = ContinuousClock.now
            counting.cancel()
            let counts = try await counting.value
            let took = ContinuousClock.now - started
            print("cancelled after 0.5 s: \(counts.values.reduce(0, +)) frames counted; cancel and close took \(took)")
            #expect(counts.values.reduce(0, +) > 0, "the readers were counting when cancelled")
            #expect(counts.values.allSatisfy { $0 == 1 }, "no frame counted twice")
            #expect(took < .seconds(2), "cancellation stops the readers and close() returns promptly")
            #expect(throws: PcapError.closed) { try handle.queues[0].stats() }
            #expect(throws: PcapError.closed) { try handle.dispatch { _ in } }
            // The sender runs to its end; the closed handle must not mind.
            while !sending.isFinished { try await Task.sleep(for: .milliseconds(50)) }
        }
    }
}
