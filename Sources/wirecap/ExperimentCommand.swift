import ArgumentParser
import CWirecapLinux
import Foundation
import WirecapCommandLine
import WirecapEngine
import WirecapLab
import WirecapSandbox

/// The main job: drop-rate experiments comparing libpcap, plain fanout, kernel rollover,
/// wirecap's basic and advanced modes and wirecap through its pcap facade (a reader per queue) on
/// the same traffic, in a private sandbox.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Measure drops per queue for each capture engine on the same traffic, in a private veth sandbox.",
        discussion: """
            With no arguments runs the default suite (burst, imbalance, load, trace, ids; 3 repetitions) in a few minutes and \
            writes results.json, results.csv, report.md and PNG plots (gnuplot) into --out. Engines: libpcap, plain \
            fanout, kernel rollover, wirecap basic and advanced, and wirecap through its pcap facade (a PcapHandle with \
            a reader per queue, each on a thread of its own, pinned as basic's work threads). Needs root: it creates \
            network namespaces; nothing leaves them. Every measured point with synthetic traffic is run again on the \
            discrete-event model, and the report sets the two side by side; each point says whether it measures a burst (does \
            it fit the buffers) or a sustained load (does the machine keep up), with the loss in the run's second half (the \
            steady state of a sustained point) and per-flow reordering. --simulate adds the model of a 16-queue 10GbE \
            machine, as bursts and as sustained loads; --model-only runs that alone. --scenarios fwd compares forwarders (wirecap fwd plain, with the pool, with offloading; \
            netsniff-ng when installed; the kernel bridge) through three namespaces: delivered rate, loss, CPU per frame, \
            reordering and one-way latency, flat out and at half rate (about 2 minutes).
            """)

    @Option(help: "Directory for results.json, results.csv, report.md and the plots.")
    var out: String = "results"

    @Flag(help: "A short profile (one repetition, fewer points, a tenth of the packets): under a minute.")
    var quick = false

    @Option(help: "Repetitions of every point (the report gives the median and the spread).")
    var repeats: Int = 3

    @Option(help: "Scenarios to run, comma-separated: burst, imbalance, load, trace, ids, fwd (fwd is not in the default).")
    var scenarios: String = "burst,imbalance,load,trace,ids"

    @Option(help: "The trace the trace scenario replays (default: ../shared/traces/pcapplusplus/example.pcap).")
    var trace: String?

    @Option(help: "How the per-packet work is spent: sleep (no CPU; stands in for a core per queue) or spin.")
    var workMode: SyntheticWork.Mode = .sleep

    @Flag(help: "Also run the model of a 16-queue 10GbE machine (bursts and sustained loads; about 30 s).")
    var simulate = false

    @Flag(help: "Only the model of a 16-queue 10GbE machine and the WireCAP figures: no sandbox, no root needed.")
    var modelOnly = false

    func optionProblem() -> String? {
        if repeats < 1 || repeats > 100 { return "--repeats \(repeats) is out of range: use 1 to 100 (3 or more for a spread)" }
        let names = scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if names.isEmpty || names.contains(where: { ScenarioKind(rawValue: $0) == nil }) {
            return "--scenarios \(scenarios) is not a list of \(ScenarioKind.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated)"
        }
        if let trace, !FileManager.default.isReadableFile(atPath: trace) {
            return "--trace \(trace): no such readable file (give a pcap, e.g. ../shared/traces/pcapplusplus/example.pcap)"
        }
        return nil
    }

    func run() throws {
        if let problem = optionProblem() { throw fail(problem) }
        if !modelOnly, let reason = Sandbox.unavailableReason { throw fail("experiment \(reason) (or use --model-only)") }
        let kinds = scenarios.split(separator: ",").compactMap { ScenarioKind(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        var notes: [String] = []
        let tracePath = trace ?? Self.defaultTrace()
        if (kinds.contains(.trace) || kinds.contains(.ids)) && tracePath == nil {
            notes.append("trace and ids scenarios skipped: no trace found at ../shared/traces/pcapplusplus/example.pcap (give one with --trace)")
            printError("wirecap: warning: \(notes.last!)")
        }
        let directory = URL(fileURLWithPath: out, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw fail("cannot create --out \(out): \(error.localizedDescription) (choose a writable directory)")
        }
        var suite = ExperimentSuite.standard(scenarios: kinds, repeats: repeats, quick: quick, workMode: workMode, tracePath: tracePath)
        let tools = ForwardTools.current()
        if kinds.contains(.fwd) && tools.netsniff == nil {
            notes.append("netsniff-ng skipped in the fwd scenario: it is not installed (apt-get install netsniff-ng)")
            printError("wirecap: warning: \(notes.last!)")
            suite = suite.without(.netsniff)
        }
        let started = Date()
        if !modelOnly {
            printError("wirecap experiment: \(suite.points.count) points x \(suite.repeats) runs, \(Set(suite.points.map(\.setup.engine)).count) engines; results in \(directory.path)")
        }
        let runner = ExperimentRunner(suite: suite, tools: tools) { done, total, what in
            let elapsed = Date().timeIntervalSince(started)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            printError(String(format: "[%3d/%d] %3.0f s elapsed, about %3.0f s left: %@", done, total, elapsed, eta, what))
        }
        var points: [PointResult] = []
        do {
            if !modelOnly { points = try runner.run() }
        } catch let error as LabError {
            throw fail(error)
        } catch let error as CaptureError {
            // The suite's configurations, not the flags: in the engine's own terms.
            throw fail(error.description)
        }
        // The model of every measured point, always: the report's measured-vs-model table.
        if !points.isEmpty {
            printError("running the discrete-event model of the measured points...")
            points += Simulator.model(of: points)
        }
        if simulate || modelOnly {
            printError("running the discrete-event model of a 16-queue machine...")
            points += Simulator.bigMachine(quick: quick) + Simulator.wirecapFigures(measured: points, quick: quick)
        }
        let formatter = ISO8601DateFormatter()
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let results = ExperimentResults(
            started: formatter.string(from: started), host: host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) },
            cores: ProcessInfo.processInfo.activeProcessorCount, repeats: suite.repeats, points: points)
        var plots: [String] = []
        do {
            plots = try Plotter(directory: directory, results: points).drawAll()
        } catch {
            notes.append("\(error)")
            printError("wirecap: warning: \(error)")
        }
        do {
            try results.json().write(to: directory.appendingPathComponent("results.json"))
            try results.csv().write(to: directory.appendingPathComponent("results.csv"), atomically: true, encoding: .utf8)
            try Report(results: results, plots: plots, notes: notes).markdown().write(
                to: directory.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
        } catch {
            throw fail("cannot write results into \(out): \(error.localizedDescription) (choose a writable directory)")
        }
        print(Self.summary(points.filter { modelOnly ? $0.simulated : !$0.simulated }))
        print("wrote \(directory.path)/results.json, results.csv, report.md and \(plots.count) plots in \(Int(Date().timeIntervalSince(started))) s")
    }

    static func defaultTrace() -> String? {
        let candidates = [
            "../shared/traces/pcapplusplus/example.pcap",
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("shared/traces/pcapplusplus/example.pcap").path,
        ]
        return candidates.first { FileManager.default.isReadableFile(atPath: $0) }
    }

    /// The short table printed at the end: per scenario and engine, the median drop rate.
    static func summary(_ points: [PointResult]) -> String {
        var lines = ["", "scenario   series                      setting                           drop rate (median, min-max)  second half  measures"]
        for p in points {
            let setting = "\(p.point.variable)=\(p.point.value == p.point.value.rounded() ? String(Int(p.point.value)) : String(p.point.value)) \(p.point.setup.engine.title)"
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            var line =
                pad(p.point.scenario.rawValue, 11) + pad(p.point.series, 28) + pad(setting, 34)
                + pad(String(format: "%6.2f %% (%.2f-%.2f)", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100), 29)
                + pad(p.secondHalfLoss.map { String(format: "%6.2f %%", $0.median * 100) } ?? "     -", 13) + p.regime.short
            // A forwarder's line also says how fast and how late the frames reached the sink.
            if let rate = p.forwardSpread({ $0.deliveredRate }), let p99 = p.forwardSpread({ $0.latencyP99Microseconds }) {
                line += String(format: "  delivered %.0f/s, p99 latency %.0f us", rate.median, p99.median)
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
