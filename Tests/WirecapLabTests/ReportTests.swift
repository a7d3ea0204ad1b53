import Testing
@testable import WirecapLab

/// The report's measured-vs-model table, regime column and reorder column, on made-up runs.
@Suite("lab: the report")
struct ReportTests {
    func point(_ engine: LabEngine) -> ExperimentPoint {
        ExperimentPoint(
            scenario: .imbalance, variable: "T", value: 0.5, series: "elephant=90%",
            setup: EngineSetup(engine: engine, queues: 2, blockSize: 256 << 10, blockCount: 16, poolChunks: 16, threshold: 0.5),
            traffic: Traffic(packets: 400_000, rate: 250_000, flows: 64, size: 64, elephantPercent: 90), workNanoseconds: 7_000, workMode: "sleep")
    }

    func run(processed: [UInt64], reordered: Int?, restored: Int?, secondHalfLost: Int) -> RunResult {
        let queues = processed.enumerated().map { q, n in
            QueueFigures(
                queue: q, received: n, captureDrops: 0, deliveryDrops: 0, processed: n, inFlight: 0, offloadedOut: 0, offloadedIn: 0, rolledOver: 0,
                cpuSeconds: 0)
        }
        return RunResult(
            offered: 400_000, refusedBySender: 0, queues: queues, cpuSeconds: 0, sendSeconds: 1.6, duplicated: 0, conserved: true,
            secondHalf: HalfFigures(offered: 200_000, lost: secondHalfLost), reordered: reordered, reorderedRestored: restored)
    }

    @Test("each measured point is set beside its model with the difference, and a difference over 5 points says why")
    func measuredAgainstModel() {
        // Measured: 30 % lost (280,000 processed); model: 20 % (320,000). Facade with offloading:
        // 0 lost both ways, 1,234 frames reordered, none after restoring.
        let basicMeasured = PointResult(point: point(.basic), runs: [run(processed: [30_000, 250_000], reordered: 0, restored: nil, secondHalfLost: 70_000)])
        let basicModel = PointResult(point: point(.basic), runs: [run(processed: [40_000, 280_000], reordered: nil, restored: nil, secondHalfLost: 40_000)], simulated: true)
        let facadeMeasured = PointResult(
            point: point(.facadeOffload), runs: [run(processed: [150_000, 250_000], reordered: 1_234, restored: 0, secondHalfLost: 0)])
        let facadeModel = PointResult(point: point(.facadeOffload), runs: [run(processed: [150_000, 250_000], reordered: nil, restored: nil, secondHalfLost: 0)], simulated: true)
        let results = ExperimentResults(started: "now", host: "test", cores: 2, repeats: 1, points: [basicMeasured, facadeMeasured, basicModel, facadeModel])
        let report = Report(results: results, plots: [], notes: [])

        let rows = report.agreements()
        #expect(rows.count == 2)
        let basic = rows[0]
        #expect(abs(basic.measured - 0.30) < 1e-9 && abs(basic.model - 0.20) < 1e-9)
        #expect(abs(basic.difference - -10) < 1e-9)
        #expect(abs((basic.measuredSecondHalf ?? 0) - 0.35) < 1e-9 && abs((basic.modelSecondHalf ?? 0) - 0.20) < 1e-9)
        #expect(basic.note?.contains("30000/250000") == true, "the measured split over the queues, against the model's: \(basic.note ?? "no note")")
        #expect(basic.note?.contains("not modelled: CPU") == true, "measured lost more than the model")
        #expect(rows[1].difference == 0 && rows[1].note == nil, "no reason asked where they agree")

        let markdown = report.markdown()
        #expect(markdown.contains("## Model against measurement"))
        #expect(markdown.contains("Over 2 points the model's drop rate is 5.0 percentage points from the measured median on average; 1 of 2 agree within 5 points"))
        #expect(markdown.contains("| 30.00 % | 20.00 % | -10.00 | 35.00 % | 20.00 % |"), "the row: measured, model, difference, both second halves")
        // The scenario's table: what the point measures, the second half, the capacity bound and
        // the reorder column with its restored figure.
        #expect(markdown.contains("| measures |") && markdown.contains("| reordered (restored) |"))
        #expect(markdown.contains("| 1234 [0] |"), "reordered 1,234, none after restoring by chunk sequence")
        // 250,000/s over 2 queues at 7 us (143,000/s a worker): 90 % elephant puts 237,500/s on one.
        #expect(markdown.contains("sustained") || markdown.contains("burst"))
        #expect(markdown.contains(String(format: "%.2f %%", (237_500.0 - 1e9 / 7_000) / 250_000 * 100)), "basic's capacity bound: the elephant queue's excess")
    }
}
