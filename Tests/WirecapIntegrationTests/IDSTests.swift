import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile

/// The example IDS over the pcap facade, run as a user would.
@Suite("wirecap-ids example")
struct IDSTests {
    var ids: String { URL(fileURLWithPath: Tool.executable).deletingLastPathComponent().appendingPathComponent("wirecap-ids").path }

    func run(_ arguments: [String]) throws -> Tool.Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ids)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Tool.Outcome(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test("counts packets, flows and signature matches in a file, with a filter")
    func file() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-ids-\(getpid()).pcap").path
        defer { unlink(path) }
        // 400 numbered frames over 8 flows (UDP source ports 1024...1031): every payload says WCAP.
        let frames = SequencedFrame(flows: 8, size: 80)
        let writer = try SavefileWriter(path: path, snapLength: 65535)
        for sequence in 0..<UInt64(400) {
            frames.bytes(sequence: sequence).withUnsafeBytes { writer.write(bytes: $0, wireLength: $0.count, seconds: 1, nanoseconds: Int(sequence)) }
        }
        try writer.close()
        let all = try run(["-r", path, "--signature", "WCAP", "--signature", "hex:deadbeef"])
        #expect(all.status == 0, "\(all.stderr)")
        #expect(all.stdout.contains("packets 400"))
        #expect(all.stdout.contains("flows 8"))
        #expect(all.stdout.contains("signature WCAP: 400 packets"))
        #expect(all.stdout.contains("signature hex:deadbeef: 0 packets"))
        let filtered = try run(["-r", path, "--signature", "WCAP", "udp", "src", "port", "1024"])
        #expect(filtered.stdout.contains("packets 50") && filtered.stdout.contains("flows 1"), "\(filtered.stdout)")
        let parse = try run(["-r", path, "--queues", "x"])
        #expect(parse.status != 0 && parse.stderr.split(separator: "\n").count == 1 && parse.stderr.contains("--queues"), "\(parse.stderr)")
        let bad = try run(["-r", path, "--signature", "hex:xyz"])
        #expect(bad.status != 0 && bad.stderr.contains("--signature hex:xyz is not text or hex"))
        // The engine's refusal, through the facade, names this command's flag.
        let queues = try run(["-i", "lo", "--queues", "0"])
        #expect(queues.status != 0 && queues.stderr == "wirecap-ids: --queues 0 is out of range: use 1 to 256 (one per core is typical)\n", "\(queues.stderr)")
    }
}
