import ArgumentParser
import Foundation
import WirecapEngine

@main
struct Wirecap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wirecap",
        abstract: "Lossless multi-queue packet capture on Linux (AF_PACKET TPACKET_V3, WireCAP-style).",
        subcommands: [CaptureCommand.self, SendCommand.self, DemoCommand.self, SynthCommand.self, ReplayCommand.self, ExperimentCommand.self])

    static func main() {
        StderrLogHandler.bootstrap
        main(nil)
    }
}

/// Prints `wirecap: message` on standard error and exits non-zero: the one-line error a person
/// can act on, instead of a stack trace.
func fail(_ message: CustomStringConvertible) -> ExitCode {
    FileHandle.standardError.write(Data("wirecap: \(message)\n".utf8))
    return ExitCode.failure
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension FanoutMode: ExpressibleByArgument {}
extension MemoryLockPolicy: ExpressibleByArgument {}
extension SyntheticWork.Mode: ExpressibleByArgument {}
