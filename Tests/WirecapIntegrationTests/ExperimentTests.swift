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
            #expect(Set(measured.map(\.point.setup.engine)) == Set(LabEngine.capture), "every engine ran")
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

        @Test("bad options give one line and a non-zero exit")
        func badOptions() throws {
            let repeats = try Tool.run(["experiment", "--repeats", "0"])
            #expect(repeats.status != 0 && repeats.stderr.contains("--repeats 0 is out of range"))
            let scenarios = try Tool.run(["experiment", "--scenarios", "burst,nonsense"])
            #expect(scenarios.status != 0 && scenarios.stderr.contains("is not a list of burst, imbalance, load, trace, ids"))
        }
    }
}
