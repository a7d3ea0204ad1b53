import Foundation

/// The human-readable summary: what was run, and per scenario a table of medians with spreads.
package struct Report {
    package let results: ExperimentResults
    package let plots: [String]
    package let notes: [String]

    package init(results: ExperimentResults, plots: [String], notes: [String]) {
        self.results = results
        self.plots = plots
        self.notes = notes
    }

    package func markdown() -> String {
        var out = "# wirecap drop-rate experiment\n\n"
        out += "Run \(results.started) on \(results.host) (\(results.cores) cores); each point repeated \(results.repeats) times, "
        out += "figures are medians with the min-max spread. \"Dropped\" is every frame the sender handed to the kernel that the "
        out += "handler never processed (capture drops, delivery drops, and anything lost before the ring).\n\n"
        for note in notes { out += "- \(note)\n" }
        if !notes.isEmpty { out += "\n" }
        for scenario in ScenarioKind.allCases {
            for simulated in [false, true] {
                let points = results.points.filter { $0.point.scenario == scenario && $0.simulated == simulated }
                guard let first = points.first else { continue }
                if scenario == .fwd {
                    out += Self.forwarding(points)
                    continue
                }
                out += "## \(scenario.rawValue)\(simulated ? " (discrete-event model)" : "")\n\n"
                out += Self.describe(first.point) + "\n\n"
                out += Self.regimes(points)
                out += "| series | \(first.point.variable) | engine | measures | offered | processed | dropped (median, min-max) | second half | capacity bound | reordered (restored) | capture drops | delivery drops | CPU ns/packet | per queue processed / dropped |\n"
                out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
                for p in points {
                    let offered = Spread(p.runs.map { Double($0.offered) }).median
                    let captureDrops = Spread(p.runs.map { Double($0.captureDrops) }).median
                    let deliveryDrops = Spread(p.runs.map { Double($0.deliveryDrops) }).median
                    let perQueue = p.queues.map { "q\($0.queue): \(Int($0.processed)) / \(Int($0.captureDrops + $0.deliveryDrops))" }.joined(separator: ", ")
                    out += "| \(p.point.series) | \(ExperimentPoint.format(p.point.value)) | \(Plotter.shortName(p.point)) | \(p.regime.short) | \(Int(offered)) | \(Int(p.processed.median)) | "
                    out += String(format: "%.2f %% (%.2f-%.2f)", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
                    let regime = p.regime
                    out += " | \(Self.percent(p.secondHalfLoss)) | \(regime.capacityLoss.map { String(format: "%.2f %%", $0 * 100) } ?? "-") | \(Self.reorderCell(p))"
                    out += " | \(Int(captureDrops)) | \(Int(deliveryDrops)) | \(simulated ? "-" : String(format: "%.0f", p.cpuNanosecondsPerPacket.median)) | \(perQueue) |\n"
                }
                out += "\n"
            }
        }
        out += agreement()
        if !plots.isEmpty {
            out += "## Plots\n\n"
            for plot in plots { out += "![\(plot)](\(plot))\n\n" }
        }
        return out
    }

    /// Per series, what its points measure (the engine with the largest buffer decides whether
    /// the series is long enough to be sustained), then what the columns mean.
    static func regimes(_ points: [PointResult]) -> String {
        var out = ""
        var seen: [String] = []
        for p in points where !seen.contains(p.point.series) {
            seen.append(p.point.series)
            let largest = points.filter { $0.point.series == p.point.series }.max { a, b in
                (a.regime.fillSeconds ?? 0) < (b.regime.fillSeconds ?? 0)
            }!
            out += "- \(p.point.series): \(largest.regime.sentence)\n"
        }
        out += "\n\"Second half\": the loss among the frames of the run's second half (sequence numbers, sent in order): for a "
        out += "sustained point the steady-state loss. \"Capacity bound\": the loss no buffer can avoid in the long run at the "
        out += "nominal load (each queue's excess, or the total excess where the engine spills to other queues). \"Reordered\": "
        out += "frames of a flow processed after a later frame of the same flow; in brackets after restoring each owner queue's "
        out += "order by chunk sequence, for the engines that tell the reader a chunk's owner and sequence.\n\n"
        return out
    }

    static func percent(_ spread: Spread?) -> String {
        guard let spread else { return "-" }
        return String(format: "%.2f %%", spread.median * 100)
    }

    static func reorderCell(_ p: PointResult) -> String {
        guard let reordered = p.reordered else { return "-" }
        var cell = String(format: "%.0f", reordered.median)
        if reordered.minimum != reordered.maximum { cell += String(format: " (%.0f-%.0f)", reordered.minimum, reordered.maximum) }
        if let restored = p.reorderedRestored { cell += String(format: " [%.0f]", restored.median) }
        return cell
    }

    /// One row of the comparison: a measured point and the model of the same point.
    package struct Agreement: Sendable {
        package var label: String
        package var regime: String
        package var measured: Double
        package var model: Double
        package var measuredSecondHalf: Double?
        package var modelSecondHalf: Double?
        /// Why they differ, where they differ by more than `Report.agreementPoints`.
        package var note: String?

        /// Model minus measured, in percentage points.
        package var difference: Double { (model - measured) * 100 }
    }

    /// Points apart beyond which a row of the comparison says why.
    package static let agreementPoints = 5.0

    /// The measured points that have a model, each with its model.
    package func agreements() -> [Agreement] {
        let model = results.points.filter(\.simulated)
        return results.points.filter { !$0.simulated }.compactMap { m in
            guard let s = model.first(where: { $0.point == m.point }) else { return nil }
            var row = Agreement(
                label: m.point.label, regime: m.regime.short, measured: m.dropRate.median, model: s.dropRate.median,
                measuredSecondHalf: m.secondHalfLoss?.median, modelSecondHalf: s.secondHalfLoss?.median)
            if abs(row.difference) > Self.agreementPoints { row.note = Self.why(measured: m, model: s) }
            return row
        }
    }

    /// What the model leaves out that the measurement shows, in the measurement's own figures.
    static func why(measured m: PointResult, model s: PointResult) -> String {
        let rates = m.runs.filter { $0.sendSeconds > 0 }.map { Double($0.offered) / $0.sendSeconds / 1000 }
        let split: ([PointResult.QueueSummary]) -> String = { $0.map { String(Int($0.offered)) }.joined(separator: "/") }
        var why: [String] = []
        if m.point.traffic.rate == nil, let low = rates.min(), let high = rates.max() {
            why.append(String(format: "a flat-out sender: %.0f to %.0f kpps in the runs, the model takes the median, and the burst's loss moves with it", low, high))
        }
        if m.queues.count > 1 && split(m.queues) != split(s.queues) {
            why.append("the flows split over the queues \(split(m.queues)) (kernel's keyed hash) against \(split(s.queues)) in the model")
        }
        if s.dropRate.median < m.dropRate.median {
            why.append("not modelled: CPU; on veth the kernel's receive path runs on the sender's core, and a thread sharing that core wakes late, where the model gives every worker a core and no wake-up latency")
        }
        return why.joined(separator: "; ")
    }

    /// Measured drop rates next to the model's for the same points, with the difference.
    func agreement() -> String {
        let rows = agreements()
        guard !rows.isEmpty else { return "" }
        var out = "## Model against measurement\n\n"
        let differences = rows.map { abs($0.difference) }
        let mean = differences.reduce(0, +) / Double(differences.count)
        let within = differences.filter { $0 <= Self.agreementPoints }.count
        out += String(
            format: "Every measured point with synthetic traffic run again on the discrete-event model (`Simulator`): the same queues, rates, ring and pool sizes and work, the sender as fast as it was measured in that point's runs. Over %d points the model's drop rate is %.1f percentage points from the measured median on average; %d of %d agree within %.0f points. The model gives every worker a core of its own and no wake-up latency, and leaves out the copy's cost; the trace and ids points are not modelled (their flows come from a file the model does not read, and the ids work is real inspection, not a fixed cost).\n\n",
            rows.count, mean, within, rows.count, Self.agreementPoints)
        out += "| point | measures | measured | model | model - measured (points) | second half, measured | second half, model | why they differ |\n|---|---|---|---|---|---|---|---|\n"
        func half(_ value: Double?) -> String { value.map { String(format: "%.2f %%", $0 * 100) } ?? "-" }
        for row in rows {
            out += String(format: "| %@ | %@ | %.2f %% | %.2f %% | %+.2f |", row.label, row.regime, row.measured * 100, row.model * 100, row.difference)
            out += " \(half(row.measuredSecondHalf)) | \(half(row.modelSecondHalf)) | \(row.note ?? "") |\n"
        }
        return out + "\n"
    }

    /// The fwd scenario's table: per forwarder and load, what the sink received and how late.
    static func forwarding(_ points: [PointResult]) -> String {
        guard let first = points.first?.point else { return "" }
        let t = first.traffic
        var out = "## fwd\n\n"
        out += "\(t.packets) numbered \(t.size)-byte frames over \(t.flows) flows, sender -> forwarder -> sink (three namespaces, veth), "
        out += "each frame stamped with CLOCK_REALTIME when its batch of \(ForwardLab.senderBatch) is sent; the sink (wirecap's engine, one "
        out += "queue) takes the kernel's capture time stamp (CLOCK_REALTIME, the same clock in every namespace). \"flat out\": as fast as "
        out += "the sender goes; \"half rate\": paced at half the median rate it reached flat out through the bridge. wirecap fwd: "
        out += "\(first.setup.queues) queues, rings of \(ForwardLab.blockCount) x \(ForwardLab.blockSize / 1024) KiB blocks with a "
        out += "\(ForwardLab.blockTimeoutMilliseconds) ms block timeout, R pool chunks per queue; netsniff-ng: one socket, the same ring "
        out += "size (`-S`). Forwarder CPU: the forwarder process's threads (scheduler run time) per delivered frame; none for the "
        out += "bridge, whose work is softirq on the receiving core (on veth inside the sender's send call). Machine CPU: busy "
        out += "time of all cores (/proc/stat) per delivered frame: sender, sink and forwarder together. Reordered: frames that "
        out += "arrived after a later frame of their flow. Medians of the runs, min-max in brackets.\n\n"
        out += "| load | engine | sent | send rate | delivered | loss (median, min-max) | delivered rate | forwarder CPU ns/frame | machine CPU ns/frame | reordered | latency p50 us | latency p99 us |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        func cell(_ spread: Spread?, _ format: String) -> String {
            guard let spread else { return "n/a" }
            return String(format: format, spread.median) + (spread.minimum == spread.maximum ? "" : String(format: " (" + format + "-" + format + ")", spread.minimum, spread.maximum))
        }
        var notes: [String] = []
        for p in points {
            let sent = Spread(p.runs.map { Double($0.offered) })
            out += "| \(p.point.series) | \(Plotter.shortName(p.point)) | \(Int(sent.median)) | \(cell(p.forwardSpread { $0.sendRate }, "%.0f")) | "
            out += "\(Int(p.processed.median)) | " + String(format: "%.2f %% (%.2f-%.2f)", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            out += " | \(cell(p.forwardSpread { $0.deliveredRate }, "%.0f")) | \(cell(p.forwardSpread(\.forwarderCpuNanosecondsPerFrame), "%.0f")) | "
            out += "\(cell(p.forwardSpread { $0.machineCpuNanosecondsPerFrame }, "%.0f")) | \(cell(p.forwardSpread { Double($0.reordered) }, "%.0f")) | "
            out += "\(cell(p.forwardSpread { $0.latencyP50Microseconds }, "%.0f")) | \(cell(p.forwardSpread { $0.latencyP99Microseconds }, "%.0f")) |\n"
            for (i, run) in p.runs.enumerated() {
                if let note = run.forward?.note { notes.append("\(p.point.label), run \(i + 1): \(note)") }
                if let foreign = run.forward?.foreign, foreign > 0 {
                    notes.append("\(p.point.label), run \(i + 1): \(foreign) frames at the sink that were not the run's numbered frames")
                }
                if let counts = run.forward?.forwarder, counts.captureDrops > 0 || counts.offloadedOut > 0 || counts.txErrors > 0 {
                    notes.append("\(p.point.label), run \(i + 1): forwarder received \(counts.received), forwarded \(counts.forwarded), capture drops \(counts.captureDrops), TX errors \(counts.txErrors), chunks offloaded \(counts.offloadedOut)")
                }
            }
        }
        out += "\n"
        for note in notes { out += "- \(note)\n" }
        return out + (notes.isEmpty ? "" : "\n")
    }

    static func describe(_ p: ExperimentPoint) -> String {
        let t = p.traffic
        // The ids scenario sweeps the rate: each row says its own.
        let rate = p.scenario == .ids ? "at the rate of each row" : t.rate.map { "\(Int($0)) frames/s" } ?? "as fast as the sender goes"
        let what = t.tracePath.map { "frames of \(URL(fileURLWithPath: $0).lastPathComponent), looped" } ?? "\(t.size)-byte frames over \(t.flows) flows"
        let elephant = t.elephantPercent > 0 ? ", \(t.elephantPercent) % of them in one flow" : ""
        let ring = "\(p.setup.blockCount) x \(p.setup.blockSize / 1024) KiB ring per queue"
        let work =
            p.workMode == ExperimentPoint.idsWorkMode
            ? "the example IDS (wirecap-ids's inspector: flow table and \(ExperimentPoint.idsSignatures.count) byte signatures) as the work in every engine"
            : "\(p.workNanoseconds) ns of \(p.workMode)-mode work per packet in every engine"
        return "\(t.packets) \(what)\(elephant), \(rate); \(p.setup.queues) queue(s) with hash fanout, \(ring); \(work)."
    }
}
