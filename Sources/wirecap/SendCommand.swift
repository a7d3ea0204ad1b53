import ArgumentParser
import WirecapCommandLine
import WirecapEngine
import WirecapSandbox

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send numbered test frames (IPv4/UDP from 198.18.0.0/15) on an interface.",
        discussion: "Each frame carries its sequence number, so a capture can be checked for loss and duplication.")

    @Option(name: .short, help: "Interface to send on.")
    var i: String

    @Option(help: "Number of frames.")
    var packets: Int = 100_000

    @Option(help: "Number of distinct flows (UDP source ports), sent round robin.")
    var flows: Int = 256

    @Option(help: "Frame size in bytes, without the frame check sequence.")
    var size: Int = 64

    @Option(help: "Frames per second (default: as fast as the kernel takes them).")
    var pps: Double?

    /// Checked in `run`, so that the error is one line like every other one.
    func optionProblem() -> String? {
        if packets < 1 { return "--packets \(packets) is out of range: give 1 or more" }
        if flows < 1 || flows > 65536 { return "--flows \(flows) is out of range: use 1 to 65536" }
        if size < SequencedFrame.minimumSize || size > 9000 {
            return "--size \(size) is out of range: use \(SequencedFrame.minimumSize) to 9000 bytes"
        }
        // Bounded so that the sender's batch and deadline arithmetic stays within its integers.
        if let pps, !(pps >= ReplayCommand.slowest && pps.isFinite) {
            return "--pps \(shown(pps)) is out of range: give a positive rate of at least \(ReplayCommand.slowest) packets per second"
        }
        return nil
    }

    func run() throws {
        if let problem = optionProblem() { throw fail(problem) }
        let sender: FrameSender
        do {
            sender = try FrameSender(interface: i)
        } catch {
            throw fail(error)
        }
        let report = sender.sendSequenced(SequencedFrame(flows: flows, size: size), count: packets, rate: pps)
        print("sent \(report.sent) frames (\(report.bytes) bytes) in \(String(format: "%.3f", report.seconds)) s: \(Int(report.packetsPerSecond)) pps")
        for (reason, count) in report.refused.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            print("refused \(count) frames: \(reason.rawValue)")
        }
    }
}
