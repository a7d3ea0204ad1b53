import ArgumentParser
import CWirecapLinux
import Foundation
import WirecapEngine
import WirecapSandbox

/// The main job for now: a sandboxed multi-queue capture, checked frame by frame.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build a private veth sandbox, send numbered frames through it, capture them on N queues, and check every frame arrived exactly once.",
        discussion: "Needs root (it creates network namespaces). Nothing leaves the sandbox, and it is removed at the end.")

    @Option(help: "Number of capture queues.")
    var queues: Int = 4

    @Option(help: "Number of frames to send.")
    var packets: Int = 1_000_000

    @Option(help: "Number of flows the frames are spread over.")
    var flows: Int = 1024

    @Option(help: "Frame size in bytes.")
    var size: Int = 64

    @Option(help: "Frames per second (default: as fast as the sender goes).")
    var pps: Double?

    @Option(help: "Bytes per ring block.")
    var blockSize: Int = RingGeometry.default.blockSize

    @Option(help: "Blocks per ring.")
    var blocks: Int = RingGeometry.default.blockCount

    @Flag(help: "Also compare every captured frame byte for byte with what was sent.")
    var verifyBytes = false

    @Option(name: .short, help: "Snap length: bytes kept of each packet.")
    var s: Int = 65_535

    @Option(help: "Ring-buffer pool: chunks per queue (0: no pool).")
    var poolChunks: Int = 0

    @Option(help: "Synthetic processing load: nanoseconds of work per packet.")
    var workNs: Int = 0

    @Option(help: "How the load is spent: spin or sleep.")
    var workMode: SyntheticWork.Mode = .spin

    /// Checked in `run`, so that the error is one line like every other one.
    func optionProblem() -> String? {
        if packets < 1 { return "--packets \(packets) is out of range: give 1 or more" }
        if flows < 1 || flows > 65536 { return "--flows \(flows) is out of range: use 1 to 65536" }
        if size < SequencedFrame.minimumSize || size > 1514 {
            return "--size \(size) is out of range: use \(SequencedFrame.minimumSize) to 1514 bytes"
        }
        return nil
    }

    func run() throws {
        if let problem = optionProblem() { throw fail(problem) }
        if let reason = Sandbox.unavailableReason { throw fail("demo \(reason)") }
        let ring = RingGeometry(blockSize: blockSize, blockCount: blocks, blockTimeoutMilliseconds: 8)
        let pool = poolChunks > 0 ? PoolConfiguration(chunks: poolChunks) : nil
        let work = SyntheticWork(nanosecondsPerPacket: workNs, mode: workMode)
        do {
            try CaptureConfiguration(interface: "x", queues: queues, ring: ring, snapLength: s, pool: pool).validate()
        } catch {
            throw fail(error)
        }
        let frames = SequencedFrame(flows: flows, size: size)
        print("building sandbox: two network namespaces and a veth pair")
        try Sandbox.with(queues: queues) { sandbox in
            let configuration = CaptureConfiguration(interface: sandbox.receiverInterface, queues: queues, ring: ring, snapLength: s, pool: pool)
            let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
            let ledger = SequenceLedger(expected: packets, frames: frames, queues: queues, compareBytes: verifyBytes)
            try engine.start { WorkingHandler(ledger.handler(queue: $0), work: work) }
            print("listening on \(sandbox.receiverInterface): \(queues) queues (hash fanout, \(ring.blockCount) x \(ring.blockSize)-byte blocks each\(pool.map { ", pool of \($0.chunks) chunks each" } ?? ""))")
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            print("sending \(packets) frames of \(size) bytes over \(flows) flows...")
            let report = sender.sendSequenced(frames, count: packets, rate: pps)
            print("sent \(report.sent) frames in \(String(format: "%.2f", report.seconds)) s (\(Int(report.packetsPerSecond)) pps)")
            // Wait until the kernel's counters and the handlers agree, then stop (which drains).
            // Wait while the handlers make progress, then stop (which drains what is left).
            var last = UInt64.max
            while true {
                let s = engine.statistics()
                if s.processed + s.captureDrops >= UInt64(report.sent) || s.processed == last { break }
                last = s.processed
                usleep(200_000)
            }
            engine.stop()
            let stats = engine.statistics()
            let verdict = ledger.verdict()
            print("")
            print("queue   received  processed  capture_drops  delivery_drops  freezes  cpu_ns_per_packet")
            for q in stats.queues {
                let ns = q.processed > 0 ? q.cpuSeconds / Double(q.processed) * 1e9 : 0
                print(String(format: "%5d %10llu %10llu %14llu %15llu %8llu %18.1f", q.queue, q.received, q.processed, q.captureDrops, q.deliveryDrops, q.freezes, ns))
            }
            let ns = stats.processed > 0 ? stats.cpuSeconds / Double(stats.processed) * 1e9 : 0
            print(String(format: "total %10llu %10llu %14llu %15llu %8llu %18.1f", stats.received, stats.processed, stats.captureDrops, stats.deliveryDrops, stats.freezes, ns))
            print("")
            print("offered \(report.sent), \(verdict)")
            let lost = UInt64(report.sent) - min(UInt64(report.sent), UInt64(verdict.captured - verdict.duplicated))
            print(
                verdict.exactlyOnce && stats.captureDrops == 0
                    ? "every frame captured exactly once"
                    : "LOSS: \(lost) of \(report.sent) frames not processed (\(String(format: "%.1f", Double(lost) / Double(max(report.sent, 1)) * 100)) %): \(stats.captureDrops) capture drops, \(stats.deliveryDrops) delivery drops, \(stats.inFlight) left in flight")
        }
        print("sandbox removed")
    }
}
