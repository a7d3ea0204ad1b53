import Foundation

// What the unit test targets share (a test target cannot import another): running a program the
// tests use as a peer (tcpdump, tshark, the wirecap executable) and a scratch path for its files.

/// A flat file in the temporary directory, unique per call. Flat, not in a private directory:
/// tcpdump, run as root, drops to its own user before it reads.
public func temporaryPath(_ tag: String, _ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-\(tag)-\(getpid())-\(UUID().uuidString)-\(name)").path
}

/// How a program ended and what it printed.
public struct ProgramOutcome: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program to its end. Standard error goes to a file, so a chatty tool cannot fill a
/// pipe nobody reads yet.
public func runProgram(_ executable: String, _ arguments: [String]) throws -> ProgramOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let errorPath = temporaryPath("test", "stderr")
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    defer { unlink(errorPath) }
    let errorFile = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    process.standardOutput = out
    process.standardError = errorFile
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try errorFile.close()
    let errorData = try Data(contentsOf: URL(fileURLWithPath: errorPath))
    return ProgramOutcome(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errorData, as: UTF8.self))
}
