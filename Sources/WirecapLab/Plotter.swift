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
        let figures = results.filter { Self.isWirecapFigure($0.point) }
        let measured = results.filter { !$0.simulated }
        let big = results.filter { $0.simulated && $0.point.setup.queues >= 16 && !Self.isWirecapFigure($0.point) }
        let modelHere = results.filter { $0.simulated && $0.point.setup.queues < 16 && !Self.isWirecapFigure($0.point) }
        if let name = try rxm(figures.filter { $0.point.series.hasPrefix(Simulator.rxmSeries) }, measured: measured, file: "wirecap-drop-vs-RxM", gnuplot: gnuplot) {
            written.append(name)
        }
        if let name = try thresholds(figures.filter { $0.point.series.hasPrefix(Simulator.thresholdSeries) }, measured: measured, file: "wirecap-drop-vs-T", gnuplot: gnuplot) {
            written.append(name)
        }
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

    /// The model's sweeps for WireCAP's two figures (`Simulator.wirecapFigurePoints`).
    static func isWirecapFigure(_ p: ExperimentPoint) -> Bool {
        p.series.hasPrefix(Simulator.rxmSeries) || p.series.hasPrefix(Simulator.thresholdSeries)
    }

    /// WireCAP's figure of drop rate against R x M at a fixed burst: the model, one line per chunk
    /// size M; the shape the paper's argument predicts (a fluid bound: what neither the buffer nor
    /// the worker during the burst can take is lost, so the drop rate falls linearly with R x M
    /// and is 0 once the pool holds the burst's excess); and the sandbox's measured burst points
    /// of the same length, where the run has them.
    func rxm(_ points: [PointResult], measured: [PointResult], file: String, gnuplot: String) throws -> String? {
        guard let first = points.first else { return nil }
        var sizes: [Int] = []
        for p in points where !sizes.contains(p.point.setup.blockSize) { sizes.append(p.point.setup.blockSize) }
        func mebibytes(_ p: ExperimentPoint) -> Double { Double(p.setup.engine.usesPool ? p.setup.poolChunks * p.setup.blockSize : 0) / Double(1 << 20) }
        var data = ""
        var plots: [String] = []
        for (i, size) in sizes.enumerated() {
            data += "# model, M = \(size >> 10) KiB: R x M (MiB), drop %\n"
            for p in points.filter({ $0.point.setup.blockSize == size }).sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f\n", mebibytes(p.point), p.dropRate.median * 100)
            }
            data += "\n\n"
            plots.append("'\(file).dat' index \(i) using 1:2 with linespoints title \"model, M = \(size >> 10) KiB\"")
        }
        // The fluid bound, for the middle chunk size.
        let shape = points.filter { $0.point.setup.blockSize == sizes[sizes.count / 2] }.sorted { $0.point.value < $1.point.value }
        data += "# the paper's shape (fluid bound): R x M (MiB), drop %\n"
        for p in shape {
            let regime = p.regime
            let frames = Double(p.point.traffic.packets)
            let lost = max(0, frames - Double(p.point.setup.bufferFrames(frameSize: p.point.traffic.size)) - regime.duration * (regime.capacity ?? 0))
            data += String(format: "%.3f %.3f\n", mebibytes(p.point), lost / frames * 100)
        }
        data += "\n\n"
        plots.append("'\(file).dat' index \(sizes.count) using 1:2 with lines dashtype 2 lw 2 title \"expected shape (fluid bound)\"")
        let sandbox = measured.filter { $0.point.scenario == .burst && $0.point.traffic.packets == first.point.traffic.packets && $0.point.setup.engine != .libpcap && $0.point.setup.engine != .facade }
        if !sandbox.isEmpty {
            data += "# measured in the sandbox: R x M (MiB), drop % median, min, max\n"
            for p in sandbox.sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f %.3f %.3f\n", mebibytes(p.point), p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            }
            data += "\n\n"
            plots.append("'\(file).dat' index \(sizes.count + 1) using 1:2:3:4 with yerrorbars pt 7 ps 1.5 title \"measured (sandbox, M = 256 KiB)\"")
        }
        let t = first.point.traffic
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "Drop rate against R x M at a fixed burst (\(t.packets) frames flat out, \(first.point.workNanoseconds / 1000) us a packet, 4 MiB ring)"
            set xlabel "pool R x M (MiB)"
            set ylabel "frames not processed (%)"
            set yrange [-2:105]
            set key top right
            plot \(plots.joined(separator: ", "))
            """
        return try draw(file: file, data: data, script: script, gnuplot: gnuplot)
    }

    /// WireCAP's figure of drop rate against the offload threshold T, one line per imbalance
    /// (the model), with the sandbox's advanced-mode points where the run has them.
    func thresholds(_ points: [PointResult], measured: [PointResult], file: String, gnuplot: String) throws -> String? {
        guard let first = points.first else { return nil }
        var series: [String] = []
        for p in points where !series.contains(p.point.series) { series.append(p.point.series) }
        var data = ""
        var plots: [String] = []
        for (i, name) in series.enumerated() {
            data += "# model, \(name): T, drop %\n"
            for p in points.filter({ $0.point.series == name }).sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f\n", p.point.value, p.dropRate.median * 100)
            }
            data += "\n\n"
            plots.append("'\(file).dat' index \(i) using 1:2 with linespoints title \"model, \(name.replacingOccurrences(of: Simulator.thresholdSeries + " ", with: ""))\"")
        }
        let sandbox = measured.filter { $0.point.scenario == .imbalance && $0.point.setup.engine == .advanced }
        var index = series.count
        for share in Set(sandbox.map(\.point.traffic.elephantPercent)).sorted() {
            data += "# measured in the sandbox, elephant \(share) %: T, drop % median, min, max\n"
            for p in sandbox.filter({ $0.point.traffic.elephantPercent == share }).sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f %.3f %.3f\n", p.point.value, p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            }
            data += "\n\n"
            plots.append("'\(file).dat' index \(index) using 1:2:3:4 with yerrorbars pt 7 ps 1.5 title \"measured, elephant=\(share)%\"")
            index += 1
        }
        let t = first.point.traffic
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "Drop rate against offload threshold T (2 queues, \(Int(t.rate ?? 0) / 1000) kframes/s, \(first.point.workNanoseconds / 1000) us a packet, R = \(first.point.setup.poolChunks))"
            set xlabel "T (share of the pool a backlog may reach before chunks go to a buddy; 1: never)"
            set ylabel "frames not processed (%)"
            set yrange [-2:105]
            set xrange [0:1.05]
            set key top left
            plot \(plots.joined(separator: ", "))
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
        // One line per engine and series (the 16-queue model has a burst and a sustained series).
        var series: [String] = []
        for p in points where !series.contains(p.point.series) { series.append(p.point.series) }
        var lines: [(LabEngine, String)] = []
        for s in series {
            for e in LabEngine.allCases where points.contains(where: { $0.point.setup.engine == e && $0.point.series == s }) { lines.append((e, s)) }
        }
        var data = ""
        for (e, s) in lines {
            data += "# \(e.title), \(s)\n"
            for p in points.filter({ $0.point.setup.engine == e && $0.point.series == s }).sorted(by: { $0.point.value < $1.point.value }) {
                data += String(format: "%.3f %.3f %.3f %.3f\n", p.point.value / 1000, p.dropRate.median * 100, p.dropRate.minimum * 100, p.dropRate.maximum * 100)
            }
            data += "\n\n"
        }
        let plots = lines.enumerated().map { i, line in
            "'\(file).dat' index \(i) using 1:2:3:4 with yerrorlines title \"\(line.0.title)\(series.count > 1 ? ", " + line.1 : "")\""
        }
        let script = """
            set terminal pngcairo size 900,460 font ",10"
            set output '\(file).png'
            set title "Load: drop rate against work per packet (\(series.joined(separator: "; ")), \(points[0].point.workMode) mode)"
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
