import ArgumentParser
import Foundation
import WirecapEngine
import WirecapTraffic

@main
struct Wirecap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wirecap",
        abstract: "Lossless multi-queue packet capture on Linux (AF_PACKET TPACKET_V3, WireCAP-style).",
        subcommands: [CaptureCommand.self, SendCommand.self, DemoCommand.self, SynthCommand.self, ReplayCommand.self, ExperimentCommand.self])

    static func main() {
        StderrLogHandler.bootstrap
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            // Help, version and our own `fail` exits as ArgumentParser prints them; a parse or
            // validation error as one line that names the option and where the fix is.
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let message =
                (error as? CaptureError)?.description(naming: \.flag)
                ?? fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let subcommand = arguments.first { name in configuration.subcommands.contains { $0.configuration.commandName == name } }
            let help = ["wirecap", subcommand].compactMap { $0 }.joined(separator: " ") + " --help"
            printError("wirecap: \(message.replacingOccurrences(of: "Error: ", with: "")) (see `\(help)`)")
            Foundation.exit(code.rawValue)
        }
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

extension ConfigurationError.Parameter {
    /// The flag that sets this parameter, in `wirecap capture` and the commands that share its
    /// options: the one place where the engine's parameters get the command line's names.
    var flag: String {
        switch self {
        case .interface: "-i"
        case .queues: "--queues"
        case .blockSize: "--block-size"
        case .blockCount: "--blocks"
        case .blockTimeout: "--block-timeout"
        case .snapLength: "-s"
        case .poolChunks: "--pool-chunks"
        case .lockMemory: "--lock-pool"
        case .offloadThreshold: "--offload-threshold"
        case .buddyGroups: "--buddy-groups"
        case .filter: "the filter expression"
        }
    }
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

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension FanoutMode: ExpressibleByArgument {}
extension MemoryLockPolicy: ExpressibleByArgument {}
extension SyntheticWork.Mode: ExpressibleByArgument {}
