import ArgumentParser
import CWirecapLinux
import Foundation
import WirecapCommandLine
import WirecapEngine
import WirecapTraffic

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send a pcap or pcapng file on an interface through an AF_PACKET transmit ring.",
        discussion: """
            The file (Ethernet link type) is loaded into memory once. By default packets keep the \
            file's own timing, like tcpreplay; --multiplier speeds it up, --pps sends at a fixed \
            rate, --topspeed as fast as the interface takes frames. Frames longer than the MTU \
            allows, and runts, are refused and counted by reason. Prints progress on standard error \
            (on a terminal) and a report on standard output; SIGINT stops early and reports.
            """)

    @Option(name: .short, help: "Interface to send on.")
    var i: String

    @Argument(help: "The pcap or pcapng file to send.")
    var file: String

    @Option(help: "Packets per second, evenly spaced (instead of the file's timing).")
    var pps: Double?

    @Option(help: "Play the file's timing this many times faster (0.5: half speed).")
    var multiplier: Double?

    @Flag(help: "Send as fast as the interface takes frames.")
    var topspeed = false

    @Option(help: "Send the file this many times.")
    var loop: Int = 1

    @Option(help: "Send this many packets at top speed, then pause --gap milliseconds; repeat.")
    var burst: Int?

    @Option(help: "Milliseconds of silence after each burst.")
    var gap: Double?

    @Option(help: "Frames up to this many bytes are copied into the kernel's buffers, longer ones sent zero-copy from the ring's pages (0: all zero-copy).")
    var copyLimit: Int = TxRing.defaultCopyLimit

    /// Checked in `run`, so that the error is one line like every other one.
    func optionProblem() -> String? {
        if loop < 1 { return "--loop \(loop) is out of range: give 1 or more times through the file" }
        // The lower bounds keep every deadline within the 64-bit nanosecond clock: below them the
        // next packet would be due in weeks (and --pps 1e-12 in longer than the clock counts).
        if let pps, !(pps >= Self.slowest && pps.isFinite) {
            return "--pps \(shown(pps)) is out of range: give a positive rate of at least \(Self.slowest) packets per second"
        }
        if let multiplier, !(multiplier >= Self.slowest && multiplier.isFinite) {
            return "--multiplier \(shown(multiplier)) is out of range: give a positive factor of at least \(Self.slowest) (2: twice as fast as recorded)"
        }
        let pacings = [pps != nil ? "--pps" : nil, multiplier != nil ? "--multiplier" : nil, topspeed ? "--topspeed" : nil].compactMap { $0 }
        if pacings.count > 1 { return "\(pacings.joined(separator: " and ")) cannot be combined: choose one way to pace the replay" }
        if burst != nil && gap == nil { return "--burst needs --gap MS: the milliseconds of silence after each burst" }
        if gap != nil && burst == nil { return "--gap needs --burst PACKETS: the packets sent at top speed before each gap" }
        if copyLimit < 0 { return "--copy-limit \(copyLimit) is out of range: give 0 (all zero-copy) or more bytes" }
        if let burst, burst < 1 { return "--burst \(burst) is out of range: give 1 or more packets per burst" }
        if let gap, !(gap > 0 && gap.isFinite && gap <= 3_600_000) {
            return "--gap \(shown(gap)) is out of range: give a positive number of milliseconds, up to 3600000"
        }
        if burst != nil && (pps != nil || multiplier != nil) {
            return "--burst sends each burst at top speed, so it cannot be combined with \(pps != nil ? "--pps" : "--multiplier"): drop one of them"
        }
        return nil
    }

    /// The slowest --pps and --multiplier: a packet every 1000 s, or the file 1000 times slower.
    static let slowest = 0.001

    /// A number as it was probably typed: 5 rather than 5.0.
    var options: ReplayOptions {
        let pacing: ReplayOptions.Pacing
        if let pps {
            pacing = .packetsPerSecond(pps)
        } else if topspeed || burst != nil {
            pacing = .topSpeed
        } else {
            pacing = .fileTiming(multiplier: multiplier ?? 1)
        }
        return ReplayOptions(
            pacing: pacing, loops: loop,
            burst: burst.map { ReplayOptions.Burst(packets: $0, gapNanoseconds: UInt64(gap! * 1e6)) })
    }

    func run() throws {
        if let problem = optionProblem() { throw fail(problem) }
        // SIGINT/SIGTERM are taken by the replay loop (polled), not by a handler.
        _ = CWirecapLinux_block_stop_signals()
        let trace: LoadedTrace
        let ring: TxRing
        do {
            trace = try TraceLoader.load(path: file)
        } catch {
            throw fail(error)
        }
        do {
            // Slots just large enough for the file's longest frame: small frames sit close together.
            ring = try TxRing(interface: i, slotCapacity: trace.longest, copyLimit: copyLimit)
        } catch {
            throw fail(error)
        }
        let replayer = Replayer(trace: trace, ring: ring, options: options)
        let showProgress = isatty(STDERR_FILENO) == 1
        let report = replayer.run(
            progress: showProgress
                ? { p in
                    FileHandle.standardError.write(Data("\rsent \(p.sent) packets, \(Int(p.packetsPerSecond.rounded())) pps\u{1B}[K".utf8))
                } : nil,
            shouldStop: { CWirecapLinux_wait_stop_signal(0) != 0 })
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        print(Self.describe(report, trace: trace, ring: ring, loops: loop))
        if let failure = report.failure { throw fail(failure) }
    }

    /// The final report: packets and bytes sent, elapsed time, rates, refusals by reason.
    static func describe(_ report: ReplayReport, trace: LoadedTrace, ring: TxRing, loops: Int) -> String {
        var lines: [String] = []
        let times = loops == 1 ? "once" : "\(loops) times"
        lines.append("replayed \(trace.path) (\(trace.count) packets) \(times) on \(ring.interface)\(report.interrupted ? ", interrupted" : "")")
        lines.append("sent \(report.packets) packets (\(report.bytes) bytes) in \(String(format: "%.6f", report.seconds)) s")
        lines.append("rate \(String(format: "%.1f", report.packetsPerSecond)) pps, \(String(format: "%.2f", report.megabitsPerSecond)) Mbit/s")
        if report.packets > 0 {
            lines.append("cpu \(String(format: "%.3f", report.cpuSeconds)) s in the sending thread, \(Int((report.cpuSeconds * 1e9 / Double(report.packets)).rounded())) ns per packet")
        }
        if report.refused.isEmpty {
            lines.append("refused 0 frames")
        } else {
            for (reason, count) in report.refused.sorted(by: { $0.key < $1.key }) {
                let detail: String
                switch reason {
                case .overMTU: detail = "over the MTU (longer than \(ring.mtu + 14) bytes, \(ring.mtu + 18) with a VLAN tag)"
                case .runt: detail = "runt (shorter than the 14-byte Ethernet header)"
                case .kernel: detail = reason.description
                }
                lines.append("refused \(count) \(count == 1 ? "frame" : "frames"): \(detail)")
            }
        }
        if report.unsent > 0 { lines.append("unsent \(report.unsent) frames left in the ring") }
        if trace.cutShort > 0 {
            lines.append("note: \(trace.cutShort) packets were captured shorter than they were on the wire, and were sent as captured")
        }
        return lines.joined(separator: "\n")
    }
}
