import Foundation
import Testing
import WirecapSandbox

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
        let hugeStamp = try Self.write(Self.pcapng(timestamp: .max), suffix: "pcapng")
        defer { unlink(hugeStamp) }
        expectOneLineError(
            try Tool.run(["replay", "-i", "wcnosuch0", hugeStamp]), containing: [hugeStamp, "record 1", "damaged timestamp", "more than a century"])

        let badMicro = try Self.write(Self.pcapMicro(seconds: 1_700_000_000, microseconds: .max), suffix: "pcap")
        defer { unlink(badMicro) }
        expectOneLineError(
            try Tool.run(["replay", "-i", "wcnosuch0", badMicro]), containing: [badMicro, "record 1", "damaged timestamp", "sub-second field"])
    }

    /// A 64-byte Ethernet frame: what the records carry does not matter, only their times.
    static let frame = [UInt8](repeating: 0xFF, count: 6) + [UInt8](repeating: 0x02, count: 6) + [0x08, 0x00] + [UInt8](repeating: 0, count: 50)

    static func write(_ bytes: [UInt8], suffix: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-numbers-\(getpid())-\(UUID().uuidString).\(suffix)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    static func le16(_ value: UInt16) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// A section header, an Ethernet interface (microsecond resolution, the default) and one
    /// enhanced packet block stamped `timestamp` units.
    static func pcapng(timestamp: UInt64) -> [UInt8] {
        var bytes = le32(0x0A0D_0D0A) + le32(28) + le32(0x1A2B_3C4D) + le16(1) + le16(0) + [UInt8](repeating: 0xFF, count: 8) + le32(28)
        bytes += le32(1) + le32(20) + le16(1) + le16(0) + le32(65535) + le32(20)
        let length = UInt32(32 + frame.count)
        bytes += le32(6) + le32(length) + le32(0) + le32(UInt32(truncatingIfNeeded: timestamp >> 32)) + le32(UInt32(truncatingIfNeeded: timestamp))
        bytes += le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame + le32(length)
        return bytes
    }

    /// A classic microsecond pcap file with one record.
    static func pcapMicro(seconds: UInt32, microseconds: UInt32) -> [UInt8] {
        var bytes = le32(0xA1B2_C3D4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65535) + le32(1)
        bytes += le32(seconds) + le32(microseconds) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
        return bytes
    }
}
