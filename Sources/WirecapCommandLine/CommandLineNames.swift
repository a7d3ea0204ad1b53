import ArgumentParser
import Foundation
import Synchronization
import WirecapEngine

extension ConfigurationError.Parameter {
    /// The flag that sets this parameter, in `wirecap capture` and the commands that share its
    /// options (`wirecap fwd`, `wirecap-fwd`): the one place where the engine's parameters get
    /// the command line's names.
    public var flag: String {
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

public func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension FanoutMode: ExpressibleByArgument {}
extension MemoryLockPolicy: ExpressibleByArgument {}

/// Runs a command the way every wirecap tool does: help and version as ArgumentParser prints
/// them, any other error as one line `PROGRAM: what and the fix (see `PROGRAM [SUB] --help`)` and
/// a non-zero exit, never a usage screen or a stack trace.
public func runWithOneLineErrors<Command: ParsableCommand>(_ command: Command.Type, program: String) -> Never {
    let arguments = Array(CommandLine.arguments.dropFirst())
    do {
        var parsed = try Command.parseAsRoot(arguments)
        try parsed.run()
        Foundation.exit(0)
    } catch {
        let code = Command.exitCode(for: error)
        if code == .success || error is ExitCode { Command.exit(withError: error) }
        let message =
            (error as? CaptureError)?.description(naming: \.flag)
            ?? Command.fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        let subcommand = arguments.first { name in Command.configuration.subcommands.contains { $0.configuration.commandName == name } }
        let help = [program, subcommand].compactMap { $0 }.joined(separator: " ") + " --help"
        printError("\(program): \(message.replacingOccurrences(of: "Error: ", with: "")) (see `\(help)`)")
        Foundation.exit(code.rawValue)
    }
}

/// Files this process has appended statistics to.
private let startedFiles = Mutex(Set<String>())

/// A `--stats-json` object: one JSON line with snake_case keys in a stable order, to a file, or
/// to standard output for `-`.
public protocol StatisticsJSON: Encodable {}

/// The --stats-json file, made (empty) before the privileges are given up: without -Z the
/// process keeps root's uid but not CAP_DAC_OVERRIDE, so it could no longer create a file in a
/// directory root does not own, and the statistics of a whole run would be lost at its end. An
/// existing file it made stays writable. With -Z the file is the user's to make, as -w is. Throws
/// the reason it cannot be made.
public func prepareStatisticsFile(_ path: String?, switchingUser: Bool) throws {
    guard let path, path != "-", !switchingUser else { return }
    try Data().write(to: URL(fileURLWithPath: path))
}

extension StatisticsJSON {
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// One line to `path` (replacing the file), or a line more with `appending` (the first
    /// append of a process empties the file, so a run's periodic lines start afresh).
    public func write(to path: String, appending: Bool = false) throws {
        var data = try json()
        data.append(0x0a)
        if path == "-" {
            FileHandle.standardOutput.write(data)
        } else if appending {
            let fresh = startedFiles.withLock { $0.insert(path).inserted }
            if fresh || !FileManager.default.fileExists(atPath: path) { try Data().write(to: URL(fileURLWithPath: path)) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } else {
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}
