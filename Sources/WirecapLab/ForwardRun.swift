#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Foundation
import WirecapEngine
import WirecapSandbox

/// Where the fwd scenario finds the forwarders it runs as programs of their own.
package struct ForwardTools: Sendable {
    /// The `wirecap` executable whose `fwd` subcommand is run: a child process, so that the CPU
    /// time read from /proc is the forwarder's alone (the sender and the sink run in this one).
    package var wirecap: String
    /// netsniff-ng, or nil when it is not installed.
    package var netsniff: String?

    package init(wirecap: String, netsniff: String?) {
        self.wirecap = wirecap
        self.netsniff = netsniff
    }

    /// This very executable (it has the `fwd` subcommand) and netsniff-ng from PATH.
    package static func current() -> ForwardTools {
        ForwardTools(
            wirecap: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
            netsniff: try? Command.locate("netsniff-ng"))
    }
}

/// The settings every run of the fwd scenario shares, in one place so that the report can say them.
package enum ForwardLab {
    /// A frame waits in its RX block until the block is full or times out, so the block size
    /// sets the latency at a steady rate. Blocks of one page hold about 25 frames of 64 bytes: at
    /// the half-rate point (about 60,000 frames/s a queue here) one fills in about 0.4 ms, where
    /// 8 KiB blocks took 0.8 ms and put p99 just over 1 ms (measured: docs/experiments.md); a
    /// quieter link waits at most the 1 ms block timeout, the shortest TPACKET_V3 takes. 1,024
    /// of them make the same 4 MiB per ring as the other scenarios.
    package static let blockSize = 4 << 10
    package static let blockCount = 1024
    package static let blockTimeoutMilliseconds = 1
    /// The sender stamps a batch just before handing it to the kernel, so a frame's stamp is early
    /// by up to the time its batch takes: 16 frames keep that to tens of microseconds.
    package static let senderBatch = 16
    /// The sink's ring: 64 MiB, so the sink never drops what a forwarder delivers.
    static let sinkRing = RingGeometry(blockSize: 64 << 10, blockCount: 1024, blockTimeoutMilliseconds: 2)
}

/// Runs the fwd scenario's points in one three-namespace sandbox: per run a fresh sink capture, the
/// forwarder under test, and the same numbered, time-stamped frames from the sender.
struct ForwardScenario {
    let tools: ForwardTools
    let repeats: Int
    let progress: (String) -> Void

    func run(_ points: [ExperimentPoint]) throws -> [PointResult] {
        let queues = points.map(\.setup.queues).max() ?? 1
        var results: [PointResult] = []
        try ForwardingSandbox.with(queues: queues) { sandbox in
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            for point in points {
                var runs: [RunResult] = []
                for repetition in 0..<repeats {
                    let rate = try Self.rate(of: point, after: results)
                    let pace = rate.map { String(format: " at %.0f frames/s", $0) } ?? " flat out"
                    progress("\(point.label)\(pace) (run \(repetition + 1) of \(repeats))")
                    runs.append(try runOnce(point, rate: rate, sandbox: sandbox, sender: sender))
                }
                results.append(PointResult(point: point, runs: runs))
            }
        }
        return results
    }

    /// Flat out for load 1; otherwise that share of the median rate the sender reached flat out
    /// through the kernel bridge in this experiment: the sender's maximum on the path that costs
    /// it least, measured on the same machine a moment before.
    static func rate(of point: ExperimentPoint, after results: [PointResult]) throws -> Double? {
        guard point.value < 1 else { return nil }
        let ceiling = results.filter { $0.point.setup.engine == .bridge && $0.point.value >= 1 && $0.point.traffic == point.traffic }
        let rates = ceiling.flatMap(\.runs).compactMap { $0.forward?.sendRate }.filter { $0 > 0 }
        guard !rates.isEmpty else { throw LabError.noCeilingRun(point: point.label) }
        return point.value * Spread(rates).median
    }

    func runOnce(_ point: ExperimentPoint, rate: Double?, sandbox: ForwardingSandbox, sender: FrameSender) throws -> RunResult {
        let traffic = point.traffic
        let frames = SequencedFrame(flows: max(traffic.flows, 1), size: max(traffic.size, SequencedFrame.minimumStampedSize))
        let sink = LatencySink(expected: traffic.packets, frames: frames)
        let sinkEngine = try sandbox.sink.run {
            try CaptureEngine(
                configuration: CaptureConfiguration(interface: sandbox.sinkInterface, ring: ForwardLab.sinkRing, snapLength: LabDefaults.snapLength))
        }
        try sinkEngine.start { _ in sink.handler() }
        var sinkStopped = false
        defer { if !sinkStopped { sinkEngine.stop() } }

        let forwarder = try RunningForwarder.start(point, sandbox: sandbox, tools: tools)
        var forwarderStopped = false
        defer { if !forwarderStopped { _ = try? forwarder.stop() } }

        let cpuBefore = forwarder.cpuSeconds()
        let machineBefore = MachineCPU.busySeconds()
        let report = sender.sendSequenced(
            frames, count: traffic.packets, rate: rate, batch: ForwardLab.senderBatch, prebuilt: true, stampSendTime: true)
        // Until the sink has every frame sent, or its count stood still for half a second.
        var last = UInt64.max
        var still = 0
        while still < 10 {
            let captured = sinkEngine.statistics().processed
            if captured >= UInt64(report.sent) { break }
            still = captured == last ? still + 1 : 0
            last = captured
            usleep(50_000)
        }
        // Read before the stop: the drain that follows forwards nothing more.
        let cpuAfter = forwarder.cpuSeconds()
        let machineAfter = MachineCPU.busySeconds()
        let outcome = try forwarder.stop()
        forwarderStopped = true
        // The sink's ring hands over its last block within its timeout.
        usleep(20_000)
        sinkEngine.stop()
        sinkStopped = true

        let seen = sink.summary()
        let forwarderCPU = cpuBefore.flatMap { before in cpuAfter.map { max(0, $0 - before) } }
        var figures = ForwardFigures(
            targetRate: rate, sendRate: report.packetsPerSecond, delivered: seen.delivered, duplicated: seen.duplicated,
            reordered: seen.reordered, foreign: seen.foreign, deliveredRate: seen.deliveredRate,
            latencyP50Microseconds: seen.latencyPercentile(0.50) / 1000, latencyP99Microseconds: seen.latencyPercentile(0.99) / 1000,
            latencyMaxMicroseconds: seen.latencyPercentile(1.0) / 1000, forwarderCpuSeconds: forwarderCPU,
            machineCpuSeconds: max(0, machineAfter - machineBefore))
        figures.forwarder = outcome.counts
        figures.note = outcome.note
        let queues = outcome.counts?.queues ?? []
        // The forwarder's own law where it reports one (wirecap fwd); from outside, all that can be
        // checked is that the sink saw no frame twice and none that was not sent.
        let conserved = outcome.counts?.conserved ?? (seen.duplicated == 0 && seen.delivered <= report.sent)
        return RunResult(
            offered: report.sent, refusedBySender: report.refused.values.reduce(0, +), queues: queues, cpuSeconds: forwarderCPU ?? 0,
            sendSeconds: report.seconds, duplicated: seen.duplicated, conserved: conserved, forward: figures)
    }
}

/// A forwarder started for one run, and what it said when it stopped.
final class RunningForwarder {
    struct Outcome {
        var counts: ForwarderCounts?
        var note: String?
    }

    private let child: ChildProcess?
    private let statsPath: String?
    private let bridge: (namespace: NetworkNamespace, name: String)?
    private let engine: LabEngine

    private init(engine: LabEngine, child: ChildProcess?, statsPath: String?, bridge: (NetworkNamespace, String)?) {
        self.engine = engine
        self.child = child
        self.statsPath = statsPath
        self.bridge = bridge.map { (namespace: $0.0, name: $0.1) }
    }

    static func start(_ point: ExperimentPoint, sandbox: ForwardingSandbox, tools: ForwardTools) throws -> RunningForwarder {
        let setup = point.setup
        let input = sandbox.inputInterface
        let output = sandbox.outputInterface
        switch setup.engine {
        case .bridge:
            let name = "wcbr0"
            do {
                // A bridge device that comes up joins link-local multicast groups and says so in
                // IGMP reports (from 0.0.0.0), which it floods to the sink like any frame: turn
                // those reports off in the forwarder's namespace, so the sink sees test frames only.
                try sandbox.forwarder.exec(["sysctl", "-q", "-w", "net.ipv4.igmp_link_local_mcast_reports=0"])
                try Command.run(["ip", "-n", sandbox.forwarder.name, "link", "add", name, "type", "bridge"])
                for port in [input, output] { try Command.run(["ip", "-n", sandbox.forwarder.name, "link", "set", port, "master", name]) }
                try Command.run(["ip", "-n", sandbox.forwarder.name, "link", "set", name, "up"])
                // With STP off (the default) ports forward at once; wait until the kernel says so.
                for _ in 0..<100 {
                    let states = try sandbox.forwarder.exec(["bridge", "link", "show"])
                    if states.components(separatedBy: "state forwarding").count - 1 >= 2 { break }
                    usleep(20_000)
                }
            } catch {
                _ = try? Command.run(["ip", "-n", sandbox.forwarder.name, "link", "delete", name])
                throw LabError.forwarderFailed(engine: setup.engine.title, reason: "\(error)")
            }
            return RunningForwarder(engine: .bridge, child: nil, statsPath: nil, bridge: (sandbox.forwarder, name))
        case .netsniff:
            guard let netsniff = tools.netsniff else { throw LabError.forwarderMissing(engine: setup.engine.title) }
            // The same ring size as each of wirecap's rings; --silent: no per-packet printing;
            // --prio-high: real-time (SCHED_FIFO), as wirecap fwd's --priority-high.
            let ringKiB = setup.blockSize * setup.blockCount / 1024
            let child = try ChildProcess(
                [netsniff, "--in", input, "--out", output, "--silent", "-S", "\(ringKiB)KiB", "--prio-high"], in: sandbox.forwarder, ready: "Running!",
                engine: setup.engine.title)
            return RunningForwarder(engine: .netsniff, child: child, statsPath: nil, bridge: nil)
        case .fwdPlain, .fwdPool, .fwdOffload:
            let statsPath = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-lab-fwd-\(getpid())-\(UUID().uuidString).json").path
            var arguments = [
                tools.wirecap, "fwd", "-i", input, "-o", output, "--queues", "\(setup.queues)", "--pool-chunks", "\(setup.poolChunks)",
                "--block-size", "\(setup.blockSize)", "--blocks", "\(setup.blockCount)", "--block-timeout", "\(ForwardLab.blockTimeoutMilliseconds)",
                "-s", "\(LabDefaults.snapLength)", "--stats-json", statsPath,
                // Real-time threads, as netsniff-ng's --prio-high above: on 2 cores shared with the
                // sender and the sink, a wake-up otherwise waits for a core (p99 flat out: 4 to 6 ms
                // without, 0.4 to 1.8 ms with for the pool and plain, docs/experiments.md).
                "--priority-high",
            ]
            if setup.engine == .fwdOffload { arguments += ["--offload-threshold", "\(setup.threshold)"] }
            let child = try ChildProcess(arguments, in: sandbox.forwarder, ready: "forwarding \(input) -> \(output)", engine: setup.engine.title)
            return RunningForwarder(engine: setup.engine, child: child, statsPath: statsPath, bridge: nil)
        default:
            throw LabError.forwarderFailed(engine: setup.engine.title, reason: "not a forwarder (use it in another scenario)")
        }
    }

    /// CPU seconds of the forwarder's process so far; nil for the bridge, whose work the kernel
    /// does in softirq context on whichever core received the frame (on veth mostly inside the
    /// sender's own send call), where it cannot be told apart from the sender's.
    func cpuSeconds() -> Double? { child?.cpuSeconds() }

    /// Stops the forwarder (SIGINT: wirecap fwd drains first) and reads what it reported.
    func stop() throws -> Outcome {
        if let bridge {
            _ = try? Command.run(["ip", "-n", bridge.namespace.name, "link", "delete", bridge.name])
            return Outcome()
        }
        guard let child else { return Outcome() }
        let (status, text) = child.stop()
        defer { if let statsPath { try? FileManager.default.removeItem(atPath: statsPath) } }
        switch engine {
        case .netsniff:
            return Outcome(counts: nil, note: Self.netsniffNote(text))
        default:
            guard status == 0, let statsPath, let data = FileManager.default.contents(atPath: statsPath) else {
                throw LabError.forwarderFailed(engine: engine.title, reason: "exit \(status): \(ChildProcess.lastLine(text))")
            }
            return Outcome(counts: try ForwarderCounts(statsJSON: data), note: Self.wirecapNote(text))
        }
    }

    /// What wirecap fwd's summary says about offloading: chunks moved per queue, chunks that
    /// waited for their turn to keep order; nil when none moved.
    static func wirecapNote(_ text: String) -> String? {
        var parts: [String] = []
        for line in text.split(separator: "\n") {
            if let range = line.range(of: "chunks offloaded out "), !line.hasSuffix("out 0 / in 0") {
                parts.append("queue \(line.split(separator: ":").first?.split(separator: " ").last ?? "?") offloaded out \(line[range.upperBound...])")
            }
            if line.contains("waited for their turn") { parts.append(String(line.prefix { $0 != "," }.split(separator: " ").first ?? "") + " chunks parked for order") }
        }
        return parts.isEmpty ? nil : "wirecap fwd: " + parts.joined(separator: "; ")
    }

    /// netsniff-ng's own closing counts, e.g. "12 incoming, 10 passed, 2 out of space".
    static func netsniffNote(_ text: String) -> String? {
        var parts: [String] = []
        for line in text.split(separator: "\n") {
            // Its counts lines start with a carriage return (it redraws them on a terminal).
            let words = line.split { $0 == " " || $0 == "\r" }
            guard let first = words.first, Int(first) != nil else { continue }
            if line.contains("packets incoming") { parts.append("\(first) incoming") }
            if line.contains("packets passed filter") { parts.append("\(first) passed") }
            if line.contains("out of space") { parts.append("\(first) out of space") }
        }
        return parts.isEmpty ? nil : "netsniff-ng: " + parts.joined(separator: ", ")
    }
}

/// A program run inside a namespace (`ip netns exec`, which execs it, so the process id is the
/// program's), its output in a file, considered started once a line says `ready`.
final class ChildProcess {
    let process = Process()
    let outputPath: String

    init(_ command: [String], in namespace: NetworkNamespace, ready: String, engine: String) throws {
        outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-lab-\(getpid())-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = FileHandle(forWritingAtPath: outputPath)
        process.executableURL = URL(fileURLWithPath: try Command.locate("ip"))
        process.arguments = ["netns", "exec", namespace.name] + command
        process.standardOutput = output
        process.standardError = output
        let spawned = Result { try process.runWithNoSignalBlocked() }
        try? output?.close()
        try spawned.get()
        // A debug build opens its rings and pool in well under a second; 20 s is for a busy machine.
        for _ in 0..<400 {
            if text().contains(ready) { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        let said = text()
        _ = stop()
        throw LabError.forwarderFailed(engine: engine, reason: said.contains(ready) ? "exited at once" : "never said \"\(ready)\": \(Self.lastLine(said))")
    }

    func text() -> String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    static func lastLine(_ text: String) -> String {
        String(text.split(separator: "\n").last ?? "no output")
    }

    /// The process's CPU time: the sum over its threads of the scheduler's nanosecond run time
    /// (`/proc/PID/task/*/schedstat`), finer than the 10 ms ticks of `/proc/PID/stat`.
    func cpuSeconds() -> Double? {
        let pid = process.processIdentifier
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var nanoseconds: UInt64 = 0
        for task in tasks {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
                let first = text.split(separator: " ").first, let value = UInt64(first)
            else { continue }
            nanoseconds += value
        }
        return Double(nanoseconds) / 1e9
    }

    /// SIGINT, then up to 15 s for the program to finish (SIGKILL after); its exit status and output.
    func stop() -> (Int32, String) {
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            for _ in 0..<300 where process.isRunning { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let said = text()
        try? FileManager.default.removeItem(atPath: outputPath)
        return (process.terminationStatus, said)
    }
}

/// Busy CPU time of the whole machine, all cores (/proc/stat: everything but idle and iowait),
/// in seconds. Includes the sender, the sink, the kernel's softirq work, and whatever else runs.
enum MachineCPU {
    static func busySeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 5 else { return 0 }
        let idle = fields[3] + fields[4]
        let all = fields.prefix(8).reduce(0, +)
        return (all - idle) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// What the sink captured of one run: each numbered frame's first arrival, its one-way latency
/// (the sink's capture time stamp, CLOCK_REALTIME, minus the send stamp in the frame; every
/// namespace shares the clock), duplicates, and frames that came after a later frame of their flow.
final class LatencySink: @unchecked Sendable {
    // @unchecked: written by the sink's one capture thread only, read after it stopped.
    let expected: Int
    let frames: SequencedFrame
    let seen: UnsafeMutablePointer<UInt8>
    let lastOfFlow: UnsafeMutablePointer<Int64>
    let latencies: UnsafeMutablePointer<UInt64>
    var delivered = 0
    var duplicated = 0
    var reordered = 0
    var foreign = 0
    var firstCapture: UInt64 = 0
    var lastCapture: UInt64 = 0

    init(expected: Int, frames: SequencedFrame) {
        self.expected = expected
        self.frames = frames
        seen = .allocate(capacity: max(expected, 1))
        seen.initialize(repeating: 0, count: max(expected, 1))
        lastOfFlow = .allocate(capacity: frames.flows)
        lastOfFlow.initialize(repeating: -1, count: frames.flows)
        latencies = .allocate(capacity: max(expected, 1))
    }

    deinit {
        seen.deallocate()
        lastOfFlow.deallocate()
        latencies.deallocate()
    }

    struct Handler: PacketHandler {
        let sink: LatencySink

        mutating func handle(_ packet: Packet) {
            let sink = self.sink
            guard let sequence = SequencedFrame.sequence(of: packet.bytes), sequence < UInt64(sink.expected),
                let sent = SequencedFrame.sendTime(of: packet.bytes)
            else {
                sink.foreign += 1
                return
            }
            let slot = sink.seen + Int(sequence)
            if slot.pointee > 0 {
                sink.duplicated += 1
                return
            }
            slot.pointee = 1
            let captured = packet.timestampNanoseconds
            if sink.delivered == 0 { sink.firstCapture = captured }
            sink.lastCapture = captured
            sink.latencies[sink.delivered] = (captured &- sent) & SequencedFrame.stampMask
            sink.delivered += 1
            let flow = sink.frames.flow(of: sequence)
            if Int64(sequence) < sink.lastOfFlow[flow] { sink.reordered += 1 } else { sink.lastOfFlow[flow] = Int64(sequence) }
        }
    }

    func handler() -> Handler { Handler(sink: self) }

    struct Summary {
        var delivered: Int
        var duplicated: Int
        var reordered: Int
        var foreign: Int
        /// Frames per second at the sink, from its first capture to its last.
        var deliveredRate: Double
        /// Latencies in nanoseconds, sorted.
        var latencies: [UInt64]

        /// The nearest-rank percentile `q` (0...1) in nanoseconds; 0 when nothing arrived.
        func latencyPercentile(_ q: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            let rank = max(1, Int((q * Double(latencies.count)).rounded(.up)))
            return Double(latencies[min(rank, latencies.count) - 1])
        }
    }

    func summary() -> Summary {
        let span = Double(lastCapture &- firstCapture) / 1e9
        return Summary(
            delivered: delivered, duplicated: duplicated, reordered: reordered, foreign: foreign,
            deliveredRate: delivered > 1 && span > 0 ? Double(delivered - 1) / span : 0,
            latencies: UnsafeBufferPointer(start: latencies, count: delivered).sorted())
    }
}
