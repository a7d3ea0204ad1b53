import Foundation
import WirecapSandbox

/// Draws the paper's plots from the results with gnuplot: one data file and one script per plot,
/// both kept next to the PNG so a reader can redraw or restyle them.
package struct Plotter {
    package let directory: URL
    package let results: [PointResult]

    package init(directory: URL, results: [PointResult]) {
        self.directory = directory
        self.results = results
    }

    package static var gnuplotPath: String? { try? Command.locate("gnuplot") }

    /// Writes every plot the results have data for; returns their file names.
    package func drawAll() throws -> [String] {
        guard let gnuplot = Self.gnuplotPath else {
            throw LabError.gnuplotMissing
        }
        var written: [String] = []
        let measured = results.filter { !$0.simulated }
        let big = results.filter { $0.simulated && $0.point.setup.queues >= 16 }
        let modelHere = results.filter { $0.simulated && $0.point.setup.queues < 16 }
        for source in [("", measured), ("simulated-", modelHere), ("big-machine-", big)] where !source.1.isEmpty {
            if let name = try clustered(
                source.1.filter { $0.point.scenario == .burst }, file: "\(source.0)burst-drop-rate-vs-pool", gnuplot: gnuplot,
                title: "Burst: drop rate by buffering (R = pool chunks per queue)")
            {
                written.append(name)
            }
            if let name = try clustered(
                source.1.filter { $0.point.scenario == .imbalance }, file: "\(source.0)imbalance-drop-rate-vs-threshold", gnuplot: gnuplot,
                title: "Imbalance: drop rate by engine and offload threshold T")
            {
                written.append(name)
            }
            if let name = try perQueue(source.1.filter { $0.point.scenario == .imbalance }, file: "\(source.0)imbalance-per-queue", gnuplot: gnuplot) {
                written.append(name)
            }
            if let name = try lines(source.1.filter { $0.point.scenario == .load }, file: "\(source.0)load-drop-rate-vs-work", gnuplot: gnuplot) {
                written.append(name)
            }
            if let name = try clustered(
                source.1.filter { $0.point.scenario == .trace }, file: "\(source.0)trace-drop-rate", gnuplot: gnuplot,
                title: "Trace replay: drop rate by engine")
            {
                written.append(name)
            }
            if let name = try clustered(
                source.1.filter { $0.point.scenario == .ids }, file: "\(source.0)ids-drop-rate", gnuplot: gnuplot,
                title: "Trace replay with the example IDS as the work: drop rate by engine and rate")
            {
                written.append(name)
            }
        }
        if let name = try forwarding(measured.filter { $0.point.scenario == .fwd }, file: "fwd-rate-and-latency", gnuplot: gnuplot) {
            written.append(name)
        }
        return written
    }

    /// The fwd scenario side by side: delivered rate and p99 latency per forwarder, one bar per load.
    func forwarding(_ points: [PointResult], file: String, gnuplot: String) throws -> String? {
        guard !points.isEmpty else { return nil }
        var series: [String] = []
        var engines: [String] = []
        for p in points {
            if !series.contains(p.point.series) { series.append(p.point.series) }
            let name = Self.shortName(p.point)
            if !engines.contains(name) { engines.append(name) }
        }
        // Per engine: for each series, rate (kframes/s) median min max, then p99 (us) median min max.
        var data = "# engine " + series.map { "\"\($0)\" rate min max p99 min max" }.joined(separator: " ") + "\n"
        for engine in engines {
            var row = "\"\(engine)\""
            for s in series {
                if let p = points.first(where: { Self.shortName($0.point) == engine && $0.point.series == s }),
                    let rate = p.forwardSpread({ $0.deliveredRate }), let p99 = p.forwardSpread({ $0.latencyP99Microseconds })
                {
                    row += String(format: " %.3f %.3f %.3f", rate.median / 1000, rate.minimum / 1000, rate.maximum / 1000)
                    // A log scale has no 0: nothing delivered has no latency to draw.
                    row += p99.median > 0 ? String(format: " %.1f %.1f %.1f", p99.median, max(p99.minimum, 0.1), p99.maximum) : " - - -"
                } else {
                    row += " - - - - - -"
                }
            }
            data += row + "\n"
        }
        let rates = series.enumerated().map { i, s in
            "'\(file).dat' using \(2 + 6 * i):\(3 + 6 * i):\(4 + 6 * i)\(i == 0 ? ":xtic(1)" : "") title \"\(s)\""
        }
        let latencies = series.enumerated().map { i, s in
            "'\(file).dat' using \(5 + 6 * i):\(6 + 6 * i):\(7 + 6 * i)\(i == 0 ? ":xtic(1)" : "") title \"\(s)\""
        }
        let script = """
            set terminal pngcairo size 1100,460 font ",10"
            set output '\(file).png'
            set multiplot layout 1,2 title "Forwarding: sender -> forwarder -> sink, \(points[0].point.traffic.size)-byte frames"
            set style data histograms
            set style histogram errorbars gap 1 lw 1
            set style fill solid 0.8 border -1
            set datafile missing '-'
            set key top right
            set xtics rotate by -25
            set title "delivered at the sink"
            set ylabel "thousand frames/s"
            set yrange [0:*]
            plot \(rates.joined(separator: ", "))
            set title "one-way latency, p99"
            set ylabel "microseconds (log scale)"
            set logscale y
            set yrange [*:*]
            plot \(latencies.joined(separator: ", "))
            unset multiplot
            """
        return try draw(file: file, data: data, script: script, gnuplot: gnuplot)
    }

    static func shortName(_ p: ExperimentPoint) -> String {
        switch p.setup.engine {
        case .libpcap: "libpcap"
        case .fanout: "fanout"
        case .rollover: "rollover"
        case .basic: p.scenario == .burst ? "basic R=\(p.setup.poolChunks)" : "basic"
        case .facade: p.scenario == .burst ? "facade R=\(p.setup.poolChunks)" : "facade"
        case .advanced: "adv T=\(ExperimentPoint.format(p.setup.threshold))"
        case .facadeOffload: "facade T=\(ExperimentPoint.format(p.setup.threshold))"
        case .bridge: "bridge"
        case .netsniff: "netsniff-ng"
        case .fwdPlain: "fwd plain R=\(p.setup.poolChunks)"
        case .fwdPool: "fwd pool R=\(p.setup.poolChunks)"
        case .fwdOffload: "fwd offload T=\(ExperimentPoint.format(p.setup.threshold))"
        }
    }

    /// Bars of the median drop rate (with the min-max spread) per engine setting, one bar per series.
    func clustered(_ points: [PointResult], file: String, gnuplot: String, title: String) throws -> String? {
        guard !points.isEmpty else { return nil }
        var series: [String] = []
        var categories: [String] = []
        for p in points {
            if !series.contains(p.point.series) { series.append(p.point.series) }
            let c = Self.shortName(p.point)
            if !categories.contains(c) { categories.append(c) }
        }
        var data = "# category " + series.map { "\"\($0)\" min max" }.joined(separator: " ") + "\n"
        for c in categories {
            var row = "\"\(c)\""
            for s in series {
                if let p = points.first(where: { Self.shortName($0.point) == c && $0.point.series == s }) {
                    row += String(format: " %.3f %.3f %.3f", p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
                } else {
                    row += " - - -"
                }
            }
            data += row + "\n"
        }
        let plots = series.enumerated().map { i, s in
            "'\(file).dat' using \(2 + 3 * i):\(3 + 3 * i):\(4 + 3 * i)\(i == 0 ? ":xtic(1)" : "") title \"\(s)\""
        }
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "\(title)"
            set ylabel "frames not processed (%)"
            set yrange [0:105]
            set style data histograms
            set style histogram errorbars gap 1 lw 1
            set style fill solid 0.8 border -1
            set datafile missing '-'
            set key top right
            set xtics rotate by -25
            plot \(plots.joined(separator: ", "))
            """
        return try draw(file: file, data: data, script: script, gnuplot: gnuplot)
    }

    /// For the most imbalanced series: per engine and queue, processed and dropped frames, stacked.
    func perQueue(_ points: [PointResult], file: String, gnuplot: String) throws -> String? {
        guard let series = points.map(\.point.series).sorted().last else { return nil }
        var data = "# engine/queue processed dropped\n"
        for p in points where p.point.series == series {
            for q in p.queues {
                let dropped = q.captureDrops + q.deliveryDrops
                data += "\"\(Self.shortName(p.point)) q\(q.queue)\" \(Int(q.processed)) \(Int(dropped))\n"
            }
        }
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "Per-queue load and drops, \(series)"
            set ylabel "frames (median of runs)"
            set style data histograms
            set style histogram rowstacked
            set style fill solid 0.8 border -1
            set key top right
            set xtics rotate by -25
            plot '\(file).dat' using 2:xtic(1) title "processed", '' using 3 title "dropped"
            """
        return try draw(file: file, data: data, script: script, gnuplot: gnuplot)
    }

    /// Lines of the median drop rate against the swept work per packet, one per engine.
    func lines(_ points: [PointResult], file: String, gnuplot: String) throws -> String? {
        guard !points.isEmpty else { return nil }
        let engines = LabEngine.capture.filter { e in points.contains { $0.point.setup.engine == e } }
        var data = ""
        for e in engines {
            data += "# \(e.title)\n"
            for p in points.filter({ $0.point.setup.engine == e }).sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f %.3f %.3f\n", p.point.value / 1000, p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            }
            data += "\n\n"
        }
        let plots = engines.enumerated().map { i, e in "'\(file).dat' index \(i) using 1:2:3:4 with yerrorlines title \"\(e.title)\"" }
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "Load: drop rate against work per packet (\(points[0].point.series), \(points[0].point.workMode) mode)"
            set xlabel "work per packet x (us)"
            set ylabel "frames not processed (%)"
            set yrange [-2:105]
            set key top left
            plot \(plots.joined(separator: ", "))
            """
        return try draw(file: file, data: data, script: script, gnuplot: gnuplot)
    }

    private func draw(file: String, data: String, script: String, gnuplot: String) throws -> String {
        try data.write(to: directory.appendingPathComponent("\(file).dat"), atomically: true, encoding: .utf8)
        try script.write(to: directory.appendingPathComponent("\(file).gp"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: gnuplot)
        process.arguments = ["\(file).gp"]
        process.currentDirectoryURL = directory
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LabError.gnuplotFailed(script: "\(file).gp", reason: String(message.split(separator: "\n").last ?? ""))
        }
        return "\(file).png"
    }
}
