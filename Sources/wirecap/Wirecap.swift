import ArgumentParser
import Foundation
import WirecapCommandLine
import WirecapEngine
import WirecapTraffic

@main
struct Wirecap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wirecap",
        abstract: "Lossless multi-queue packet capture on Linux (AF_PACKET TPACKET_V3, WireCAP-style).",
        subcommands: [CaptureCommand.self, ForwardCommand.self, SendCommand.self, DemoCommand.self, SynthCommand.self, ReplayCommand.self, ExperimentCommand.self])

    static func main() {
        StderrLogHandler.bootstrap
        runWithOneLineErrors(Wirecap.self, program: "wirecap")
    }
}

/// Prints `wirecap: message` on standard error and exits non-zero: the one-line error a person
/// can act on, instead of a stack trace.
func fail(_ message: CustomStringConvertible) -> ExitCode {
    FileHandle.standardError.write(Data("wirecap: \(message)\n".utf8))
    return ExitCode.failure
}

/// `fail` for the engine's errors, with each configuration parameter named by its flag.
func fail(_ error: CaptureError) -> ExitCode {
    fail(error.description(naming: \.flag))
}

/// `fail` for traffic errors, with each synthesis option named by its `wirecap synth` flag.
func fail(_ error: TrafficError) -> ExitCode {
    fail(error.description(naming: \.flag))
}

extension TrafficError.Parameter {
    /// The `wirecap synth` flag that sets this option (for the output, the words around `-o`).
    var flag: String {
        switch self {
        case .packets: "--packets"
        case .flows: "--flows"
        case .frameSize: "--size"
        case .elephantShare: "--elephant-share"
        case .ipv6Share: "--ipv6-share"
        case .packetsPerSecond: "--pps"
        case .minimumFlowPackets: "--min-flow-packets"
        case .output: "path with -o"
        }
    }
}

extension SyntheticWork.Mode: ExpressibleByArgument {}
