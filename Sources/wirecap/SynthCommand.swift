import ArgumentParser
import Foundation
import WirecapCommandLine
import WirecapSavefile
import WirecapTraffic

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic trace of numbered UDP frames (IPv4 198.18.0.0/15, IPv6 2001:2::/48) to a pcap or pcapng file.",
        discussion: """
            Flow sizes follow a Pareto distribution with shape 1.2 (Crovella and Bestavros 1997); every \
            packet picks a flow in proportion to the packets it has left, so flows are interleaved over \
            the whole trace. Each payload starts with "WCAP", an 8-byte sequence number (0, 1, 2, ... in \
            trace order) and a 4-byte flow number, so a capture of a replay can be checked for loss. \
            The same options and seed give the same file, byte for byte.
            """)

    @Option(name: .short, help: ArgumentHelp("Output file (- for standard output).", valueName: "file"))
    var o: String?

    @Option(help: "Number of packets (default: 1000000, or what --flows draws when only --flows is given).")
    var packets: Int?

    @Option(help: "Number of flows (default: as many as the flow-size model needs for --packets).")
    var flows: Int?

    @Option(help: "Frame size: bytes without FCS (\(FrameSizeModel.minimumSize) to \(FrameSizeModel.maximumSize)), imix (7:4:1 of 64/594/1518 on the wire), or a file with one size per line.")
    var size: String = "64"

    @Option(help: "Share of the packets (0 to 1) carried by one elephant flow, flow 0.")
    var elephantShare: Double?

    @Option(help: "Share of the flows (0 to 1) that are IPv6.")
    var ipv6Share: Double = 0.25

    @Option(help: "Seed of the random choices; the same seed gives the same file.")
    var seed: UInt64 = 1

    @Option(help: "Nominal packets per second that spaces the timestamps (replay can rescale).")
    var pps: Double = 1_000_000

    @Option(help: "Packets in the smallest flow (the Pareto minimum).")
    var minFlowPackets: Int = 1

    @Flag(help: "Write pcapng instead of pcap (also chosen by an output name ending in .pcapng); nanosecond timestamps either way.")
    var pcapng = false

    func run() throws {
        guard let output = o else { throw fail("give the output file with -o FILE (e.g. -o trace.pcap)") }
        // The model's own precondition would trap; say it as the option instead.
        guard minFlowPackets >= 1 else { throw fail("--min-flow-packets \(minFlowPackets) is out of range: give 1 or more") }
        let synthesizer: TraceSynthesizer
        do {
            let configuration = SynthConfiguration(
                packets: packets, flows: flows, frameSizes: try FrameSizeModel.parse(size), elephantShare: elephantShare,
                ipv6Share: ipv6Share, seed: seed, packetsPerSecond: pps,
                flowSizes: FlowSizeModel(minimum: minFlowPackets, maximum: max(minFlowPackets, 1_000_000_000)),
                format: pcapng ? .pcapng : SavefileFormat(path: output))
            synthesizer = try TraceSynthesizer(configuration: configuration)
        } catch {
            throw fail(error)
        }
        let progress = isatty(STDERR_FILENO) == 1 ? ProgressLine() : nil
        let summary: SynthSummary
        do {
            summary = try synthesizer.write(to: output) { written, total in progress?.update(written, of: total) }
        } catch {
            progress?.clear()
            throw fail(error)
        }
        progress?.clear()
        let line = Self.summaryLine(summary, output: output, pps: pps)
        // With -o - the trace owns standard output.
        if output == "-" { printError(line) } else { print(line) }
    }

    static func summaryLine(_ s: SynthSummary, output: String, pps: Double) -> String {
        let elephant =
            s.hasElephant
            ? "elephant (flow 0) \(String(format: "%.4f", s.elephantShare)) of packets"
            : "no elephant, largest flow \(s.largestFlow) \(String(format: "%.4f", s.largestFlowShare)) of packets"
        let seconds = Double(s.durationNanoseconds) / 1e9
        return "wrote \(s.packets) packets, \(s.flows) flows, \(s.bytes) bytes to \(output): IPv4 \(s.ipv4Packets) packets in \(s.ipv4Flows) flows, "
            + "IPv6 \(s.ipv6Packets) packets in \(s.ipv6Flows) flows; \(elephant); \(String(format: "%.6f", seconds)) s at \(String(format: "%.0f", pps)) pps"
    }
}

/// A progress line on a terminal, redrawn in place at most every quarter second.
private final class ProgressLine {
    private var last = Date.distantPast

    func update(_ written: Int, of total: Int) {
        let now = Date()
        guard written < total, now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        let percent = total > 0 ? 100 * Double(written) / Double(total) : 100
        FileHandle.standardError.write(Data("\rsynth: \(written) of \(total) packets (\(String(format: "%.0f", percent)) %)\u{1B}[K".utf8))
    }

    func clear() {
        guard last != .distantPast else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
