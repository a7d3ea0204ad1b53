#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapForward
import WirecapSandbox

extension SandboxSuites {
    /// `Forwarder` between two veth pairs (sender -> forwarder -> sink): what the sink captures is
    /// compared frame by frame with what the sender sent and the verdicts said.
    @Suite("Forwarder through a three-namespace sandbox")
    struct ForwarderTests {
        @Test("1,000,000 numbered 64-byte frames over 2 queues at the sender's full speed arrive at the sink once each, unaltered, in order per flow", .timeLimit(.minutes(3)))
        func everyFrameOnce() throws {
            let total = 1_000_000
            let frames = SequencedFrame(flows: 64, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let run = try forward(sandbox, frames: frames, total: total) { _ in ForwardAll() }
                print(run.describe("forward all"))
                #expect(run.sent == total)
                run.expectExact(total: total, forwarded: UInt64(total))
                #expect(run.statistics.captureDrops == 0)
                #expect(run.statistics.queues.allSatisfy { $0.forwarded > 0 }, "both queues forwarded")
            }
        }

        @Test("a dropping handler: the sink sees exactly the frames it let through", .timeLimit(.minutes(2)))
        func dropping() throws {
            let total = 60_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let run = try forward(sandbox, frames: frames, total: total, isForwarded: { $0 % 3 != 0 }) { _ in DropEveryThird() }
                print(run.describe("drop every third"))
                let dropped = (0..<UInt64(total)).filter { $0 % 3 == 0 }.count
                run.expectExact(total: total, forwarded: UInt64(total - dropped))
                #expect(run.statistics.verdictDrops == UInt64(dropped))
            }
        }

        @Test("a modifying handler rewrites the destination MAC in place: the sink sees every frame with the new address", .timeLimit(.minutes(2)))
        func modifying() throws {
            let total = 60_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let run = try forward(sandbox, frames: frames, total: total, rewrite: RewriteDestination.expected) { _ in RewriteDestination() }
                print(run.describe("rewrite destination MAC"))
                run.expectExact(total: total, forwarded: UInt64(total))
            }
        }

        @Test("a TX ring of 32 frames: the forwarder waits for slots instead of dropping, and still loses nothing", .timeLimit(.minutes(2)))
        func smallTransmitRing() throws {
            let total = 100_000
            let frames = SequencedFrame(flows: 64, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let run = try forward(sandbox, frames: frames, total: total, transmitFrames: 32) { _ in ForwardAll() }
                print(run.describe("TX ring of 32 frames"))
                run.expectExact(total: total, forwarded: UInt64(total))
                #expect(run.statistics.txRingFullWaits > 0, "the ring really was full")
            }
        }

        @Test("with buddy offloading (T = 0.1) and a slow handler: every frame once and in order per flow; a buddy's decisions leave on the owner's ring", .timeLimit(.minutes(2)))
        func offloading() throws {
            // 90 % of the frames in one flow, so one queue gets most chunks; the handler sleeps
            // 0.5 ms every 256 frames (about 2 us a frame, no CPU), so that queue's chunks wait and
            // T = 0.1 (a backlog over 6.4 of 64 chunks) moves them to the other queue. The buddy
            // decides on them while the owner still works on earlier ones, so they must wait for
            // their turn (parked) to leave in order: without that, the sink saw frames of the
            // elephant flow out of order.
            let total = 200_000
            let frames = SequencedFrame(flows: 64, size: 64, elephantPercent: 90)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                // The handler also rewrites the destination and pushes a VLAN tag, so the notes a
                // parked chunk keeps (where each frame starts, its length, the tag) are checked too.
                let run = try forward(
                    sandbox, frames: frames, total: total, pool: 64, offload: OffloadConfiguration(threshold: 0.1), rewrite: PushTag.expected
                ) { _ in SlowForward(inner: PushTag()) }
                print(
                    run.describe("offloading T = 0.1") + "\n  chunks offloaded: "
                        + run.statistics.queues.map {
                            "queue \($0.queue) out \($0.capture.offloadedOut) in \($0.capture.offloadedIn), parked \($0.chunksParked)"
                        }.joined(separator: ", "))
                run.expectExact(total: total, forwarded: UInt64(total))
                #expect(run.statistics.isConservedPerQueue, "every frame counted for the queue that captured it")
                #expect(run.statistics.queues.reduce(0) { $0 + $1.capture.offloadedOut } > 0, "chunks moved")
                #expect(run.statistics.chunksParked > 0, "some chunks were decided before their turn and waited for it")
            }
        }

        @Test("a burst a slow handler cannot keep up with: a pool sized for it loses nothing; 2 chunks lose frames, counted as capture drops", .timeLimit(.minutes(2)))
        func slowHandlerBurst() throws {
            // About 16 us a frame (sleep mode, no CPU) against a sender at 0.3 Mpps: the backlog
            // grows while the burst lasts (75,000 frames per queue in 0.5 s, 30,000 of them
            // forwarded meanwhile). Blocks of 64 KiB (about 450 frames of 64 bytes) fill
            // before the 8 ms timeout at this rate, so a chunk holds a full block: 512 chunks per
            // queue hold 230,000 frames; a 3 MiB ring (about 140 ms of this burst, time for the
            // capture thread to be scheduled on a busy machine) and 2 chunks about 22,000.
            let total = 150_000
            let frames = SequencedFrame(flows: 64, size: 64)
            let ring = RingGeometry(blockSize: 64 << 10, blockCount: 48, blockTimeoutMilliseconds: 8)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let sized = try forward(sandbox, frames: frames, total: total, pool: 512, ring: ring) { _ in SlowForward(every: 32) }
                let small = try forward(sandbox, frames: frames, total: total, pool: 2, ring: ring, isForwarded: { _ in false }) { _ in SlowForward(every: 32) }
                print(sized.describe("slow handler, 512 chunks"))
                print(small.describe("slow handler, 2 chunks"))
                sized.expectExact(total: total, forwarded: UInt64(total))
                #expect(sized.statistics.queues.contains { $0.capture.poolFreeMinimum < 500 }, "the burst really used the pool")
                #expect(small.statistics.captureDrops > 0, "the small pool overflows into the ring, and the ring drops")
                #expect(small.statistics.received + small.statistics.captureDrops == UInt64(total), "every frame is counted: accepted or dropped by the kernel")
                #expect(small.statistics.forwarded == small.statistics.received && small.statistics.inFlight == 0)
                #expect(UInt64(small.sink.matched) == small.statistics.forwarded && small.duplicated == 0 && small.sink.altered == 0)
                #expect(small.statistics.isConservedPerQueue && small.unconserved.isEmpty, "\(small.unconserved.prefix(3))")
            }
        }

        @Test("frames the capture could not take whole are counted as too big and dropped, not sent truncated", .timeLimit(.minutes(2)))
        func tooBig() throws {
            // OUT's MTU is never below IN's (the forwarder refuses that), so on veth the frames
            // that do not fit are those the capture cut: 1,400-byte frames, a 1,000-byte snap
            // length. (On a NIC, GRO makes them.)
            let total = 20_000
            let frames = SequencedFrame(flows: 4, size: 1_400)
            try ForwardingSandbox.with(queues: 1) { sandbox in
                let run = try forward(sandbox, frames: frames, total: total, queues: 1, snapLength: 1_000, isForwarded: { _ in false }) { _ in
                    ForwardAll()
                }
                print(run.describe("cut by the capture"))
                #expect(run.statistics.received == UInt64(total) && run.statistics.tooBig == UInt64(total))
                #expect(run.statistics.forwarded == 0 && run.sink.matched == 0 && run.unexpected == 0)
                #expect(run.statistics.isConservedPerQueue && run.unconserved.isEmpty)
            }
        }
    }
}

/// Forwards everything, sleeping 0.5 ms every `every` frames (256: about 2 us a frame): a slow
/// inline handler that uses no CPU.
struct SlowForward<Inner: VerdictHandler>: VerdictHandler {
    var every = 256
    var count = 0
    var inner: Inner

    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        count &+= 1
        if count % every == 0 { usleep(500) }
        return inner.verdict(&frame)
    }
}

extension SlowForward where Inner == ForwardAll {
    init(every: Int = 256) { self.init(every: every, inner: ForwardAll()) }
}

/// Rewrites the destination MAC address and pushes VLAN tag 100 (priority 1), then forwards: a
/// switch's access port towards a trunk.
struct PushTag: VerdictHandler {
    static let tci: UInt16 = 1 << 13 | 100

    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        RewriteDestination.write(frame.bytes)
        frame.pushVLAN(Self.tci)
        return .forward
    }

    /// The frame the sink should see for `original`: the new address, then the tag.
    @Sendable static func expected(_ original: [UInt8]) -> [UInt8] {
        RewriteDestination.address + original[6..<12] + [0x81, 0x00, UInt8(tci >> 8), UInt8(tci & 0xff)] + original[12...]
    }
}

/// Drops frames whose sequence number is a multiple of 3.
struct DropEveryThird: VerdictHandler {
    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        guard let sequence = SequencedFrame.sequence(of: UnsafeRawBufferPointer(frame.bytes)) else { return .forward }
        return sequence % 3 == 0 ? .drop : .forward
    }
}

/// Rewrites the destination MAC address in the chunk, then forwards.
struct RewriteDestination: VerdictHandler {
    static let address: [UInt8] = [0x02, 0, 0, 0, 0, 0x99]

    static func write(_ frame: UnsafeMutableRawBufferPointer) {
        for i in 0..<6 { frame[i] = address[i] }
    }

    /// The frame the sink should see for `original`.
    @Sendable static func expected(_ original: [UInt8]) -> [UInt8] { address + original[6...] }

    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        Self.write(frame.bytes)
        return .forward
    }
}

/// What the sink captured: each sequence number's count, frames that differ from what was
/// expected, and frames that came after a later frame of their flow.
final class SinkRecord: @unchecked Sendable {
    // @unchecked: written by the sink's one capture thread, read after it stopped.
    let expected: Int
    let frames: SequencedFrame
    /// What the forwarder's handler does to a frame (the original's bytes in, what the sink should
    /// see out); nil: nothing.
    let rewrite: (@Sendable ([UInt8]) -> [UInt8])?
    let seen: UnsafeMutablePointer<UInt8>
    let lastOfFlow: UnsafeMutablePointer<Int64>
    var matched = 0
    var foreign = 0
    var altered = 0
    var reordered = 0

    init(expected: Int, frames: SequencedFrame, rewrite: (@Sendable ([UInt8]) -> [UInt8])?) {
        self.expected = expected
        self.frames = frames
        self.rewrite = rewrite
        seen = .allocate(capacity: expected)
        seen.initialize(repeating: 0, count: expected)
        lastOfFlow = .allocate(capacity: frames.flows)
        lastOfFlow.initialize(repeating: -1, count: frames.flows)
    }

    deinit {
        seen.deallocate()
        lastOfFlow.deallocate()
    }

    struct Handler: PacketHandler {
        let record: SinkRecord
        var scratch: [UInt8]

        mutating func handle(_ packet: Packet) {
            let record = self.record
            // A frame the forwarder tagged carries its sequence number 4 bytes further on.
            let tagged = packet.bytes.count >= 18 && packet.bytes[12] == 0x81 && packet.bytes[13] == 0x00
            let number = tagged ? (Array(packet.bytes[0..<12]) + packet.bytes[16...]).withUnsafeBytes { SequencedFrame.sequence(of: $0) } : SequencedFrame.sequence(of: packet.bytes)
            guard let sequence = number, sequence < UInt64(record.expected) else {
                record.foreign += 1
                return
            }
            record.seen[Int(sequence)] &+= 1
            record.matched += 1
            let flow = record.frames.flow(of: sequence)
            if Int64(sequence) < record.lastOfFlow[flow] { record.reordered += 1 } else { record.lastOfFlow[flow] = Int64(sequence) }
            let same: Bool
            if let rewrite = record.rewrite {
                // Allocates per frame: fine for a test's sink, and it lets a rewrite change the length.
                same = rewrite(record.frames.bytes(sequence: sequence)).elementsEqual(packet.bytes)
            } else {
                same = scratch.withUnsafeMutableBytes { expected in
                    record.frames.write(sequence: sequence, into: expected)
                    return packet.bytes.count == expected.count && memcmp(packet.bytes.baseAddress!, expected.baseAddress!, expected.count) == 0
                }
            }
            if !same { record.altered += 1 }
        }
    }

    func handler() -> Handler { Handler(record: self, scratch: [UInt8](repeating: 0, count: frames.size)) }

    /// Sequence numbers that should have arrived and did not, that arrived but should not have,
    /// and extra copies.
    func tally(isForwarded: (UInt64) -> Bool) -> (missing: Int, unexpected: Int, duplicated: Int) {
        var missing = 0
        var unexpected = 0
        var duplicated = 0
        for i in 0..<expected {
            let n = Int(seen[i])
            if isForwarded(UInt64(i)) {
                if n == 0 { missing += 1 }
            } else if n > 0 {
                unexpected += 1
            }
            if n > 1 { duplicated += n - 1 }
        }
        return (missing, unexpected, duplicated)
    }
}

struct ForwardRun {
    var statistics: ForwardStatistics
    var sink: SinkRecord
    var missing: Int
    var unexpected: Int
    var duplicated: Int
    var sent: Int
    var sendSeconds: Double
    var forwardSeconds: Double
    var samples: Int
    var unconserved: [String]

    func describe(_ name: String) -> String {
        let s = statistics
        var text = "\(name): sent \(sent) in \(String(format: "%.2f", sendSeconds)) s; forwarder: received \(s.received), forwarded \(s.forwarded) in \(String(format: "%.2f", forwardSeconds)) s (\(Int(Double(s.forwarded) / max(forwardSeconds, 1e-9))) frames/s), verdict drops \(s.verdictDrops), too big \(s.tooBig), TX ring full waits \(s.txRingFullWaits), TX errors \(s.txErrors), capture drops \(s.captureDrops), in flight \(s.inFlight); sink: \(sink.matched) frames, missing \(missing), unexpected \(unexpected), duplicated \(duplicated), altered \(sink.altered), reordered \(sink.reordered), foreign \(sink.foreign); \(samples) snapshots"
        for q in s.queues {
            text += "\n  queue \(q.queue): received \(q.received), forwarded \(q.forwarded), verdict drops \(q.verdictDrops), too big \(q.tooBig), full waits \(q.txRingFullWaits), TX errors \(q.txErrors), capture drops \(q.captureDrops), pool free min \(q.capture.poolFreeMinimum)/\(q.capture.poolChunks)"
        }
        return text
    }

    /// Every frame that should arrive arrived once, unaltered and in order per flow; nothing else
    /// arrived; the counters add up, in every snapshot and at the end.
    func expectExact(total: Int, forwarded: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(missing == 0 && unexpected == 0 && duplicated == 0, sourceLocation: sourceLocation)
        #expect(sink.altered == 0 && sink.reordered == 0 && sink.foreign == 0, sourceLocation: sourceLocation)
        #expect(sink.matched == Int(forwarded), sourceLocation: sourceLocation)
        #expect(statistics.received == UInt64(total) && statistics.captureDrops == 0, sourceLocation: sourceLocation)
        #expect(statistics.forwarded == forwarded && statistics.txErrors == 0 && statistics.tooBig == 0, sourceLocation: sourceLocation)
        #expect(statistics.inFlight == 0, sourceLocation: sourceLocation)
        #expect(statistics.isConservedPerQueue, sourceLocation: sourceLocation)
        #expect(unconserved.isEmpty, "\(unconserved.prefix(3))", sourceLocation: sourceLocation)
        #expect(samples > 0, sourceLocation: sourceLocation)
    }
}

enum ForwardingTests {
    /// Rings of 64 KiB blocks with a 2 ms timeout. The timeout retires a block every 2 ms
    /// whatever it holds (a few hundred 64-byte frames at these rates), so what a ring or a pool
    /// buffers is counted in blocks, not bytes: many small blocks hold more frames than a few
    /// large ones of the same total size.
    static func smallBlocks(_ count: Int) -> RingGeometry {
        RingGeometry(blockSize: 64 << 10, blockCount: count, blockTimeoutMilliseconds: 2)
    }
}

/// Opens a sink capture and a forwarder in the sandbox, sends `total` numbered frames flat out
/// (built before the clock starts), waits until the forwarder has accounted for every frame and
/// the sink has seen what was forwarded, stops both (the forwarder drains) and reports.
func forward<H: VerdictHandler>(
    _ sandbox: ForwardingSandbox, frames: SequencedFrame, total: Int, queues: Int = 2, pool: Int = 512, snapLength: Int = 9_000,
    transmitFrames: Int = 4096, ring: RingGeometry = ForwardingTests.smallBlocks(512),
    offload: OffloadConfiguration? = nil, isForwarded: (UInt64) -> Bool = { _ in true },
    rewrite: (@Sendable ([UInt8]) -> [UInt8])? = nil, _ makeHandler: @escaping @Sendable (Int) -> H
) throws -> ForwardRun {
    // 1,024 blocks at the sink, 512 ring blocks and 512 chunks per forwarder queue: a whole
    // debug-build burst fits even while the cores are busy elsewhere (another test run, say),
    // in the rings alone if the capture threads do not run for a while. The sink has a pool of
    // 2,048 chunks too (about 900,000 64-byte frames, the ring as many again): under a sanitizer its checks run
    // several times slower than the forwarder, and it must not be what loses frames.
    let sinkEngine = try sandbox.sink.run {
        try CaptureEngine(
            configuration: CaptureConfiguration(
                interface: sandbox.sinkInterface, ring: ForwardingTests.smallBlocks(1024), snapLength: 9_000,
                pool: PoolConfiguration(chunks: 2048, lockMemory: .off)))
    }
    let record = SinkRecord(expected: total, frames: frames, rewrite: rewrite)
    try sinkEngine.start { _ in record.handler() }
    let capture = CaptureConfiguration(
        interface: sandbox.inputInterface, queues: queues, ring: ring,
        snapLength: snapLength, pool: PoolConfiguration(chunks: pool), offload: offload)
    let forwarder = try sandbox.forwarder.run { try Forwarder(configuration: ForwarderConfiguration(capture: capture, output: sandbox.outputInterface, transmitFrames: transmitFrames)) }
    try forwarder.start(makeHandler)
    let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
    let sampler = Sampler {
        let s = forwarder.statistics()
        return s.isConservedPerQueue
            ? [] : ["received \(s.received) != forwarded \(s.forwarded) + verdict drops \(s.verdictDrops) + too big \(s.tooBig) + TX errors \(s.txErrors) + in flight \(s.inFlight)"]
    }
    let started = CWirecapLinux_monotonic_ns()
    let report = sender.sendSequenced(frames, count: total, prebuilt: true)
    // Until every frame is counted (accepted or dropped by the kernel) and none is in flight;
    // a second without progress means done too.
    var last = UInt64.max
    var still = 0
    var done = UInt64(0)
    while still < 5 {
        let s = forwarder.statistics()
        done = s.forwarded + s.verdictDrops + s.tooBig + s.txErrors
        if s.received + s.captureDrops >= UInt64(total) && s.inFlight == 0 { break }
        still = done == last ? still + 1 : 0
        last = done
        usleep(200_000)
    }
    let forwardSeconds = Double(CWirecapLinux_monotonic_ns() - started) / 1e9
    sampler.stop()
    forwarder.stop()
    let statistics = forwarder.statistics()
    // The sink's ring retires its last block within the block timeout; a slow sink (a sanitizer
    // build) works off its pool meanwhile: wait while it makes progress.
    var sinkLast = UInt64.max
    for _ in 0..<1_500 {
        let processed = sinkEngine.statistics().processed
        if processed >= statistics.forwarded { break }
        if processed == sinkLast { usleep(200_000) } else { usleep(20_000) }
        if processed == sinkLast && sinkEngine.statistics().processed == processed { break }
        sinkLast = processed
    }
    sinkEngine.stop()
    let (missing, unexpected, duplicated) = record.tally(isForwarded: isForwarded)
    return ForwardRun(
        statistics: statistics, sink: record, missing: missing, unexpected: unexpected, duplicated: duplicated, sent: report.sent,
        sendSeconds: report.seconds, forwardSeconds: forwardSeconds, samples: sampler.samples, unconserved: sampler.unconserved)
}
