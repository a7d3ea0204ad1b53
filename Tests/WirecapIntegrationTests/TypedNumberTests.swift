import Foundation
import Testing
import WirecapSandbox
import WirecapTestSupport

/// Numbers a user can type (or a file can hold) that once trapped converting a Double or a
/// 64-bit time into a narrower integer: each must be a one-line error naming the option or the
/// record, and a non-zero exit. None of these opens a socket: the interface does not exist.
@Suite("numbers a user can type: one-line errors, never a trap")
struct TypedNumberTests {
    @Test("capture: --duration inf or 1e11, --stop-wait 1e11 ms, and -s 3000000000 with a filter")
    func captureNumbers() throws {
        for duration in ["inf", "1e11"] {
            expectOneLineError(
                try Tool.run(["capture", "-i", "wcnosuch0", "--duration", duration]),
                containing: ["--duration \(duration == "inf" ? "inf" : "100000000000")", "out of range", "leave --duration out"])
        }
        expectOneLineError(
            try Tool.run(["capture", "-i", "wcnosuch0", "--pool-chunks", "8", "--stop-wait", "100000000000"]),
            containing: ["--stop-wait 100000000000 is out of range", "0 to 86400000 ms"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "wcnosuch0", "-s", "3000000000", "udp"]),
            containing: ["-s 3000000000 is out of range", "1 to 262144 bytes"])
    }

    @Test("replay and send: a rate or multiplier so small the next deadline is past the clock")
    func tinyRates() throws {
        let file = "/nonexistent/never-read.pcap"   // options are checked before the file
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", "--pps", "1e-12", file]), containing: ["--pps 1e-12", "at least 0.001"])
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", "--multiplier", "1e-12", file]), containing: ["--multiplier 1e-12", "at least 0.001"])
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", "--pps", "inf", file]), containing: ["--pps inf"])
        expectOneLineError(try Tool.run(["send", "-i", "wcnosuch0", "--pps", "1e-12"]), containing: ["--pps 1e-12", "at least 0.001"])
        expectOneLineError(try Tool.run(["send", "-i", "wcnosuch0", "--pps", "inf"]), containing: ["--pps inf"])
    }

    @Test("replay: a pcapng record with a huge timestamp, and a pcap microsecond field of 2^32 - 1")
    func damagedTimestamps() throws {
        let hugeStamp = try Self.write(handMadePcapng(timestamp: .max), suffix: "pcapng")
        defer { unlink(hugeStamp) }
        expectOneLineError(
            try Tool.run(["replay", "-i", "wcnosuch0", hugeStamp]), containing: [hugeStamp, "record 1", "damaged timestamp", "more than a century"])

        let badMicro = try Self.write(handMadePcap([(seconds: 1_700_000_000, fraction: .max)]), suffix: "pcap")
        defer { unlink(badMicro) }
        expectOneLineError(
            try Tool.run(["replay", "-i", "wcnosuch0", badMicro]), containing: [badMicro, "record 1", "damaged timestamp", "sub-second field"])
    }

    static func write(_ bytes: [UInt8], suffix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-numbers-\(getpid())-\(UUID().uuidString).\(suffix)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}
