import CWirecapLinux
import Foundation
import WirecapEngine
import WirecapSandbox
import WirecapSavefile

/// Runs every point of a suite in one sandbox, engine after engine on the same traffic.
package struct ExperimentRunner {
    package let suite: ExperimentSuite
    /// Told before each run: (runs done, runs in all, what is next).
    package var progress: (Int, Int, String) -> Void

    /// The forwarders the fwd scenario runs as programs.
    package var tools: ForwardTools

    package init(suite: ExperimentSuite, tools: ForwardTools = .current(), progress: @escaping (Int, Int, String) -> Void) {
        self.suite = suite
        self.tools = tools
        self.progress = progress
    }

    package func run() throws -> [PointResult] {
        // The capture scenarios share one two-namespace sandbox, the fwd scenario has its own
        // three namespaces.
        let capturePoints = suite.points.filter { $0.scenario != .fwd }
        let forwardPoints = suite.points.filter { $0.scenario == .fwd }
        let queues = capturePoints.map(\.setup.queues).max() ?? 1
        var traces: [String: [[UInt8]]] = [:]
        var results: [PointResult] = []
        let total = suite.points.count * suite.repeats
        var done = 0
        if !capturePoints.isEmpty {
            try Sandbox.with(queues: queues) { sandbox in
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                for point in capturePoints {
                    var runs: [RunResult] = []
                    for repetition in 0..<suite.repeats {
                        progress(done, total, "\(point.label) (run \(repetition + 1) of \(suite.repeats))")
                        var frames: [[UInt8]]? = nil
                        if let path = point.traffic.tracePath {
                            if traces[path] == nil { traces[path] = try Self.loadTrace(path) }
                            frames = traces[path]
                        }
                        runs.append(try Self.runOnce(point, sandbox: sandbox, sender: sender, traceFrames: frames))
                        done += 1
                    }
                    results.append(PointResult(point: point, runs: runs))
                }
            }
        }
        if !forwardPoints.isEmpty {
            let scenario = ForwardScenario(tools: tools, repeats: suite.repeats) { what in
                progress(done, total, what)
                done += 1
            }
            results += try scenario.run(forwardPoints)
        }
        progress(done, total, "done")
        return results
    }

    /// The Ethernet frames of a trace, for looping.
    static func loadTrace(_ path: String) throws -> [[UInt8]] {
        let reader: SavefileReader
        do {
            reader = try SavefileReader(path: path)
        } catch {
            throw LabError.traceUnreadable(error)
        }
        guard reader.linkType == LinkType.ethernet else { throw LabError.traceNotEthernet(path: path, linkType: reader.linkType) }
        var frames: [[UInt8]] = []
        do {
            while let record = try reader.next() { frames.append(record.bytes) }
        } catch {
            throw LabError.traceUnreadable(error)
        }
        guard !frames.isEmpty else { throw LabError.traceEmpty(path: path) }
        return frames
    }

    static func runOnce(_ point: ExperimentPoint, sandbox: Sandbox, sender: FrameSender, traceFrames: [[UInt8]]?) throws -> RunResult {
        let traffic = point.traffic
        let frames = SequencedFrame(flows: max(traffic.flows, 1), size: max(traffic.size, SequencedFrame.minimumSize), elephantPercent: traffic.elephantPercent)
        let ledger = SequenceLedger(
            expected: traceFrames == nil ? traffic.packets : 0, frames: frames, queues: point.setup.engine == .libpcap ? 1 : point.setup.queues,
            compareBytes: false)
        let order = FlowOrder(frames: frames, expected: ledger.expected, slots: point.setup.engine == .libpcap ? 1 : point.setup.queues)
        let engine: EngineRun =
            switch point.setup.engine {
            case .libpcap: try LibpcapRun(point: point, sandbox: sandbox, ledger: ledger, order: order)
            case .facade, .facadeOffload: try FacadeRun(point: point, sandbox: sandbox, ledger: ledger, order: order)
            default: try WirecapRun(point: point, sandbox: sandbox, ledger: ledger, order: order)
            }
        let report: FrameSender.Report
        if let traceFrames {
            report = sender.sendLooped(traceFrames, total: traffic.packets, rate: traffic.rate)
        } else {
            report = sender.sendSequenced(frames, count: traffic.packets, rate: traffic.rate, prebuilt: true)
        }
        // Wait while the handlers catch up; a count that stands still for half a second ends it.
        var last = UInt64.max
        var still = 0
        while still < 5 {
            let processed = engine.processed
            if processed >= UInt64(report.sent) { break }
            still = processed == last ? still + 1 : 0
            last = processed
            usleep(100_000)
        }
        engine.stop()
        let queues = engine.statistics()
        let verdict = ledger.verdict()
        let conserved = queues.allSatisfy { $0.received == $0.processed + $0.deliveryDrops + $0.inFlight }
        return RunResult(
            offered: report.sent, refusedBySender: report.refused.values.reduce(0, +), queues: queues, cpuSeconds: engine.cpuSeconds,
            sendSeconds: report.seconds, duplicated: verdict.duplicated, conserved: conserved,
            // A replayed trace's frames carry no sequence numbers: no order or halves to measure.
            secondHalf: traceFrames == nil ? order.secondHalf(sent: report.sent) : nil, reordered: traceFrames == nil ? order.reordered : nil,
            reorderedRestored: traceFrames == nil ? order.reorderedAfterRestoring : nil)
    }
}
