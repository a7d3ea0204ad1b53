import Foundation
import Testing
import WirecapSandbox

/// Where things are, and how to run the real `wirecap` executable the way a user would.
enum Tool {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let corpus = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/traces/tcpdump-tests")

    /// The `wirecap` built next to this test binary.
    static var executable: String { built("wirecap") }

    /// The `wirecap-fwd` built next to this test binary.
    static var forwarder: String { built("wirecap-fwd") }

    static func built(_ name: String) -> String {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = exe.deletingLastPathComponent()
        // The test binary may sit inside a bundle directory (name.xctest/...).
        while !directory.path.isEmpty && directory.path != "/" {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return exe.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Privileged tests run where network namespaces can be made; elsewhere they are skipped with this reason.
    static let sandboxReason: Comment? = Sandbox.unavailableReason.map { Comment(rawValue: $0) }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `wirecap ARGS` to completion, inside `namespace` when given, and as the unprivileged
    /// user `nobody` when `unprivileged` (through util-linux's setpriv, which drops root's
    /// capabilities with the user id).
    static func run(
        _ arguments: [String], in namespace: NetworkNamespace? = nil, unprivileged: Bool = false, wrappers: [[String]] = [],
        executable: String = Tool.executable
    ) throws -> Outcome {
        var command = [executable] + arguments
        if unprivileged && geteuid() == 0 {
            command = [try Command.locate("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"] + command
        }
        // Programs that change the limits or capabilities of what they run (setpriv, prlimit).
        for wrapper in wrappers.reversed() { command = [try Command.locate(wrapper[0])] + wrapper.dropFirst() + command }
        if let namespace { command = [try Command.locate("ip"), "netns", "exec", namespace.name] + command }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self), stderr: String(decoding: stderrData, as: UTF8.self))
    }
}

/// A `wirecap capture` (or another long-running tool: `command`) running in the background
/// inside a namespace, stopped with SIGINT.
final class BackgroundCapture {
    let process = Process()
    let stderrPath: String
    /// What the tool prints once it is ready.
    let ready: String

    /// `stdoutPath`: where the tool's standard output goes (nil: nowhere).
    init(
        _ arguments: [String], in namespace: NetworkNamespace, command: [String] = [Tool.executable, "capture"], ready: String = "listening on",
        stdoutPath: String? = nil, environment: [String: String] = [:]
    ) throws {
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        self.ready = ready
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-capture-\(getpid())-\(UUID().uuidString).err").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try Command.locate("ip"))
        process.arguments = ["netns", "exec", namespace.name] + command + arguments
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        if let stdoutPath {
            _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
            process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        } else {
            process.standardOutput = FileHandle.nullDevice
        }
        try process.runWithNoSignalBlocked()
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the `listening on` line that says the fanout group is complete.
    func waitUntilListening(timeout: Double = 20) throws { try waitFor(ready, timeout: timeout) }

    /// Waits until the tool has said `text` on standard error; throws (and ends the tool) if it
    /// exits or `timeout` seconds pass first.
    func waitFor(_ text: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(text) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        process.terminate()
        throw Command.Failure(command: process.arguments ?? [], status: process.isRunning ? -1 : process.terminationStatus, output: "never said '\(text)': \(stderr)")
    }

    /// SIGINT, as a person pressing Ctrl-C, then waits for a clean exit.
    func interrupt() -> Int32 {
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { process.terminate() }
        unlink(stderrPath)
    }
}

/// Every test that sends frames through a sandbox runs inside this suite, one at a time: on a
/// 2-core machine two at once would compete for the cores that the kernel's receive path and
/// the capture threads need, and the leak check reads process-wide tables.
@Suite("Sandbox (root)", .serialized, .disabled(if: Tool.sandboxReason != nil, Tool.sandboxReason ?? ""))
struct SandboxSuites {}

/// The shape of every error a `wirecap` command gives: a non-zero exit and one line on standard
/// error, starting `wirecap: `, that names the problem (and the fix).
func expectOneLineError(
    _ outcome: Tool.Outcome, containing phrases: [String], program: String = "wirecap", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(outcome.status != 0, sourceLocation: sourceLocation)
    let lines = outcome.stderr.split(separator: "\n")
    #expect(lines.count == 1, "one line, got: \(outcome.stderr)", sourceLocation: sourceLocation)
    #expect(lines.first?.hasPrefix("\(program): ") == true, "\(outcome.stderr)", sourceLocation: sourceLocation)
    for phrase in phrases {
        #expect(outcome.stderr.contains(phrase), "expected '\(phrase)' in: \(outcome.stderr)", sourceLocation: sourceLocation)
    }
}
