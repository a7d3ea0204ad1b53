import Foundation
import Testing
import WirecapLab
import WirecapSandbox

extension SandboxSuites {
    @Suite("wirecap experiment")
    struct ExperimentTests {
        @Test("--quick writes every output with every engine present, and the conservation law holds for each", .timeLimit(.minutes(3)))
        func quickProfile() throws {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-experiment-\(getpid())")
            defer { try? FileManager.default.removeItem(at: out) }
            let outcome = try Tool.run(["experiment", "--quick", "--simulate", "--out", out.path])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.contains("wrote \(out.path)/results.json"), "\(outcome.stdout)")
            #expect(outcome.stderr.contains("[  0/"), "progress lines on standard error")
            for file in ["results.json", "results.csv", "report.md"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file) written")
            }
            let data = try Data(contentsOf: out.appendingPathComponent("results.json"))
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let results = try decoder.decode(ExperimentResults.self, from: data)
            let measured = results.points.filter { !$0.simulated }
            #expect(Set(measured.map(\.point.setup.engine)) == Set(LabEngine.capture + [.facadeOffload]), "every engine ran")
            #expect(Set(measured.map(\.point.scenario)).isSuperset(of: [.burst, .imbalance, .load, .ids]))
            for point in measured {
                for run in point.runs {
                    #expect(run.conserved, "\(point.point.label): received == processed + delivery drops + in flight on every queue")
                    #expect(run.offered > 0)
                    #expect(run.duplicated == 0, "\(point.point.label)")
                    for q in run.queues { #expect(q.inFlight == 0, "\(point.point.label) queue \(q.queue) drained") }
                }
            }
            let simulatedPoints = results.points.filter(\.simulated).count
            #expect(simulatedPoints > 0, "--simulate adds the model's points")
            // Per-flow order from the sequence numbers: engines that keep a flow on one thread in
            // capture order reorder nothing; the facade's readers are told every chunk's owner and
            // sequence, and restoring by them leaves nothing out of order, with offloading too.
            for point in measured where point.point.traffic.tracePath == nil {
                for run in point.runs {
                    #expect(run.reordered != nil && run.secondHalf != nil, "\(point.point.label): sequence-numbered frames give order and halves")
                    if [.libpcap, .fanout, .basic, .facade].contains(point.point.setup.engine) {
                        #expect(run.reordered == 0, "\(point.point.label)")
                    }
                    if [.facade, .facadeOffload].contains(point.point.setup.engine) {
                        #expect(run.reorderedRestored == 0, "\(point.point.label): restored by chunk sequence")
                    } else {
                        #expect(run.reorderedRestored == nil, "\(point.point.label): the engine does not tell chunks' owners")
                    }
                }
            }
            // Every measured point with synthetic traffic has its model, and the report sets them side by side.
            let modelled = measured.filter { $0.point.traffic.tracePath == nil }
            #expect(modelled.allSatisfy { m in results.points.contains { $0.simulated && $0.point == m.point } })
            let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(report.contains("## Model against measurement") && report.contains("| model - measured (points) |"))
            #expect(report.contains("| measures |") && report.contains("| reordered (restored) |"))
            let csv = try String(contentsOf: out.appendingPathComponent("results.csv"), encoding: .utf8)
            #expect(csv.split(separator: "\n").count > measured.count, "a CSV row per point and queue")
            if Plotter.gnuplotPath != nil {
                let pngs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".png") }
                #expect(pngs.contains("burst-drop-rate-vs-pool.png") && pngs.contains("imbalance-drop-rate-vs-threshold.png"))
                #expect(pngs.contains("imbalance-per-queue.png") && pngs.contains("load-drop-rate-vs-work.png"))
                #expect(pngs.contains("ids-drop-rate.png"))
            } else {
                print("gnuplot is not installed: plots not checked (CI installs gnuplot-nox)")
            }
        }

        @Test("--scenarios fwd --quick: every forwarder measured on the same traffic; at half rate the bridge and wirecap deliver every frame, in order per flow, with latencies", .timeLimit(.minutes(2)))
        func forwardingScenario() throws {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-experiment-fwd-\(getpid())")
            defer { try? FileManager.default.removeItem(at: out) }
            let outcome = try Tool.run(["experiment", "--scenarios", "fwd", "--quick", "--out", out.path])
            print(outcome.stdout)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let data = try Data(contentsOf: out.appendingPathComponent("results.json"))
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let points = try decoder.decode(ExperimentResults.self, from: data).points
            let netsniffInstalled = (try? Command.locate("netsniff-ng")) != nil
            let expected = LabEngine.forwarding.filter { $0 != .netsniff || netsniffInstalled }
            #expect(Set(points.map(\.point.setup.engine)) == Set(expected), "every forwarder ran")
            #expect(points.allSatisfy { $0.point.scenario == .fwd } && points.count == 2 * expected.count)
            let bridgeRate = try #require(points.first { $0.point.setup.engine == .bridge && $0.point.value == 1 }?.runs.first?.forward?.sendRate)
            for point in points {
                for run in point.runs {
                    let f = try #require(run.forward, "\(point.point.label): forwarding figures")
                    let label = point.point.label
                    #expect(run.offered == point.point.traffic.packets, "\(label): the sender sent every frame")
                    #expect(f.delivered <= run.offered && f.duplicated == 0 && f.foreign == 0, "\(label)")
                    if f.delivered > 0 {
                        #expect(f.latencyP50Microseconds > 0 && f.latencyP99Microseconds >= f.latencyP50Microseconds, "\(label): latencies")
                    }
                    // A rate needs two arrivals (frames after the first over the span to the last): a
                    // peer that passes a single frame (netsniff-ng did in one CI run) has rate 0.
                    #expect((f.deliveredRate > 0) == (f.delivered > 1), "\(label): \(f.delivered) delivered at \(f.deliveredRate)/s")
                    if point.point.value < 1 {
                        #expect(f.targetRate == 0.5 * bridgeRate, "\(label): paced at half the bridge's flat-out rate")
                    }
                    switch point.point.setup.engine {
                    case .bridge:
                        #expect(f.forwarderCpuSeconds == nil, "no process to charge the bridge's softirq work to")
                    case .fwdPlain, .fwdPool, .fwdOffload:
                        let counts = try #require(f.forwarder, "\(label): wirecap fwd's own counts")
                        #expect(counts.conserved && counts.inFlight == 0 && counts.txErrors == 0, "\(label)")
                        #expect(counts.received == counts.forwarded, "\(label): all it received, forwarded")
                        #expect(UInt64(f.delivered) == counts.forwarded, "\(label): the sink has what wirecap sent")
                        #expect((f.forwarderCpuSeconds ?? 0) > 0, "\(label): CPU measured")
                    default:
                        #expect((f.forwarderCpuSeconds ?? 0) > 0, "\(label): CPU measured")
                        #expect(f.note?.contains("incoming") == true, "\(label): netsniff-ng's closing counts read: \(f.note ?? "none")")
                    }
                    // At half rate a 4 MiB ring alone holds the whole quick run: nothing may be lost,
                    // and without offloading a flow stays on one path, so none may be reordered.
                    if point.point.value < 1 && [.bridge, .fwdPlain, .fwdPool, .fwdOffload].contains(point.point.setup.engine) {
                        #expect(f.delivered == run.offered, "\(label): every frame delivered")
                    }
                    if [.bridge, .fwdPlain, .fwdPool].contains(point.point.setup.engine) {
                        #expect(f.reordered == 0, "\(label): in order per flow")
                    }
                }
            }
            let csv = try String(contentsOf: out.appendingPathComponent("results.csv"), encoding: .utf8)
            #expect(csv.split(separator: "\n").filter { $0.hasPrefix("measured,fwd,") }.count == points.count, "a CSV row per point")
            let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(report.contains("## fwd") && report.contains("latency p99 us"))
            if Plotter.gnuplotPath != nil {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("fwd-rate-and-latency.png").path))
            }
        }

        @Test("bad options give one line and a non-zero exit")
        func badOptions() throws {
            let repeats = try Tool.run(["experiment", "--repeats", "0"])
            #expect(repeats.status != 0 && repeats.stderr.contains("--repeats 0 is out of range"))
            let scenarios = try Tool.run(["experiment", "--scenarios", "burst,nonsense"])
            #expect(scenarios.status != 0 && scenarios.stderr.contains("is not a list of burst, imbalance, load, trace, ids"))
        }
    }
}
