import Testing
import WirecapEngine
@testable import WirecapLab
import WirecapSandbox

/// The pieces of the fwd scenario that need no sandbox: the send stamp in a frame, the sink's
/// bookkeeping, and the suite's order.
@Suite("lab: the fwd scenario")
struct ForwardLabTests {
    /// The UDP checksum over the pseudo-header and the segment, checksum field included: 0 when valid.
    func udpChecksumResidue(_ frame: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for pair in stride(from: 26, to: 34, by: 2) { sum += UInt32(frame[pair]) << 8 | UInt32(frame[pair + 1]) }
        let udpLength = frame.count - 34
        sum += 17 + UInt32(udpLength)
        return frame.withUnsafeBytes { SequencedFrame.internetChecksum(UnsafeRawBufferPointer(rebasing: $0[34...]), initial: sum) }
    }

    @Test("a send stamp reads back (low 48 bits), keeps the UDP checksum valid, and leaves everything else of the frame as it was")
    func stampRoundTrip() {
        let frames = SequencedFrame(flows: 8, size: 64)
        for sequence: UInt64 in [0, 1, 77, 1 << 40] {
            let plain = frames.bytes(sequence: sequence)
            #expect(udpChecksumResidue(plain) == 0, "write makes valid UDP")
            for time: UInt64 in [0, 1_764_000_000_123_456_789, UInt64.max] {
                var stamped = plain
                stamped.withUnsafeMutableBytes { SequencedFrame.stamp(sendTime: time, into: $0) }
                #expect(stamped.withUnsafeBytes { SequencedFrame.sendTime(of: $0) } == time & SequencedFrame.stampMask)
                #expect(stamped.withUnsafeBytes { SequencedFrame.sequence(of: $0) } == sequence)
                #expect(udpChecksumResidue(stamped) == 0, "sequence \(sequence), time \(time): checksum updated")
                let changed = (0..<plain.count).filter { plain[$0] != stamped[$0] }
                #expect(changed.allSatisfy { (40..<42).contains($0) || (58..<64).contains($0) }, "only the checksum and the stamp change: \(changed)")
            }
        }
    }

    func packet(_ frames: SequencedFrame, sequence: UInt64, sent: UInt64, captured: UInt64, into sink: LatencySink) {
        var bytes = frames.bytes(sequence: sequence)
        bytes.withUnsafeMutableBytes { SequencedFrame.stamp(sendTime: sent, into: $0) }
        var handler = sink.handler()
        bytes.withUnsafeBytes {
            handler.handle(
                Packet(bytes: $0, wireLength: $0.count, seconds: UInt32(captured / 1_000_000_000), nanoseconds: UInt32(captured % 1_000_000_000), queue: 0))
        }
    }

    @Test("the sink counts each frame once, a frame behind a later one of its flow as reordered, and latency from the stamp")
    func sinkBookkeeping() {
        // Two flows: even sequence numbers are flow 0, odd flow 1.
        let frames = SequencedFrame(flows: 2, size: 64)
        let sink = LatencySink(expected: 10, frames: frames)
        let start: UInt64 = 1_764_000_000_000_000_000
        // Arrival order 0, 1, 4, 2 (behind 4 in flow 0), 3, 3 again (a duplicate), 5, then a foreign frame.
        let arrivals: [(UInt64, UInt64)] = [(0, 10_000), (1, 20_000), (4, 30_000), (2, 40_000), (3, 50_000), (3, 60_000), (5, 1_000_000)]
        for (i, (sequence, latency)) in arrivals.enumerated() {
            let sent = start + UInt64(i) * 100_000
            packet(frames, sequence: sequence, sent: sent, captured: sent + latency, into: sink)
        }
        let foreign = [UInt8](repeating: 0, count: 64)
        var handler = sink.handler()
        foreign.withUnsafeBytes { handler.handle(Packet(bytes: $0, wireLength: 64, seconds: 0, nanoseconds: 0, queue: 0)) }

        let summary = sink.summary()
        #expect(summary.delivered == 6 && summary.duplicated == 1 && summary.foreign == 1)
        #expect(summary.reordered == 1, "frame 2 came after frame 4 of its flow")
        // Latencies of the first arrivals: 10, 20, 30, 40, 50, 1000 us.
        #expect(summary.latencyPercentile(0.5) == 30_000)
        #expect(summary.latencyPercentile(0.99) == 1_000_000)
        #expect(summary.latencyPercentile(1.0) == 1_000_000)
        // First capture at start + 10 us, last (frame 5, the 7th arrival) at start + 600 us + 1 ms.
        let span = Double(600_000 + 1_000_000 - 10_000) / 1e9
        #expect(abs(summary.deliveredRate - 5 / span) < 1e-6 * summary.deliveredRate)
    }

    @Test("the fwd suite: every forwarder flat out first, the bridge leading, then the same at half rate")
    func suiteOrder() throws {
        let suite = ExperimentSuite.standard(scenarios: [.fwd], quick: true, tracePath: nil)
        #expect(suite.points.allSatisfy { $0.scenario == .fwd && $0.setup.engine.isForwarding })
        #expect(suite.points.map(\.setup.engine) == LabEngine.forwarding + LabEngine.forwarding)
        #expect(suite.points.map(\.value) == Array(repeating: 1.0, count: 5) + Array(repeating: 0.5, count: 5))
        // A half-rate point takes its pace from the bridge's flat-out runs before it.
        let bridge = try #require(suite.points.first)
        let half = try #require(suite.points.first { $0.value < 1 })
        #expect(throws: LabError.self) { try ForwardScenario.rate(of: half, after: []) }
        func run(sendRate: Double) -> RunResult {
            RunResult(
                offered: 1, refusedBySender: 0, queues: [], cpuSeconds: 0, sendSeconds: 1, duplicated: 0, conserved: true,
                forward: ForwardFigures(
                    targetRate: nil, sendRate: sendRate, delivered: 1, duplicated: 0, reordered: 0, foreign: 0, deliveredRate: 0,
                    latencyP50Microseconds: 0, latencyP99Microseconds: 0, latencyMaxMicroseconds: 0, forwarderCpuSeconds: nil, machineCpuSeconds: 0))
        }
        let measured = PointResult(point: bridge, runs: [run(sendRate: 200_000), run(sendRate: 300_000), run(sendRate: 260_000)])
        #expect(try ForwardScenario.rate(of: half, after: [measured]) == 130_000)
        #expect(try ForwardScenario.rate(of: bridge, after: [measured]) == nil, "flat out")
        #expect(!Simulator.models(bridge.setup), "the model has no transmit side")
    }
}
