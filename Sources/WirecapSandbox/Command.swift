import Foundation

/// Runs a helper program (`ip`, `sysctl`) to completion and fails with its own words.
public enum Command {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let status: Int32
        public let output: String

        public init(command: [String], status: Int32, output: String) {
            self.command = command
            self.status = status
            self.output = output
        }

        public var description: String {
            "`\(command.joined(separator: " "))` failed (exit \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// Runs `arguments[0]` found on PATH (or /usr/sbin, /sbin) with the rest as arguments and
    /// returns its standard output.
    @discardableResult
    public static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try locate(arguments[0]))
        process.arguments = Array(arguments.dropFirst())
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(command: arguments, status: process.terminationStatus, output: text)
        }
        return text
    }

    public static func locate(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Failure(command: [name], status: 127, output: "\(name) not found on PATH (install it, e.g. `apt-get install iproute2`)")
    }
}

extension Process {
    /// `run()`, with no signal blocked in the child. A child inherits the spawning thread's
    /// signal mask, and a test runner, or a wirecap command that takes its stop signals with
    /// sigtimedwait, has most of them blocked: netsniff-ng then never sees the SIGALRM that paces
    /// its TX ring, and tcpdump ignores the SIGINT that should stop it.
    public func runWithNoSignalBlocked() throws {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        let spawned = Result { try run() }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        try spawned.get()
    }
}
