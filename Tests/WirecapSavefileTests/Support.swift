import Foundation
import WirecapSavefile
import WirecapTestSupport

/// A flat scratch file for this target (see WirecapTestSupport).
func temporaryPath(_ name: String) -> String { WirecapTestSupport.temporaryPath("savefile", name) }

/// An Ethernet/IPv4/UDP frame from 198.18.0.1 to 198.19.0.1 (checksum 0: none), `length` bytes,
/// so that tcpdump and tshark print one ordinary line for it.
func udpFrame(length: Int, seed: UInt8) -> [UInt8] {
    precondition(length >= 42)
    var frame = [UInt8](repeating: 0, count: length)
    frame[0..<6] = [0x02, 0, 0, 0, 0, 0x02]
    frame[6..<12] = [0x02, 0, 0, 0, 0, 0x01]
    frame[12] = 0x08
    let ipLength = length - 14
    frame[14..<34] = [0x45, 0, UInt8(ipLength >> 8), UInt8(ipLength & 0xff), 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 19, 0, 1]
    let udpLength = ipLength - 20
    frame[34..<42] = [0x04, 0x00, 0x13, 0x88, UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
    for i in 42..<length { frame[i] = UInt8(truncatingIfNeeded: Int(seed) &* 31 &+ i) }
    return frame
}

/// Records with what a writer must keep: nanoseconds, a record cut short by the snap length, a
/// second boundary, a large frame.
let sampleRecords = [
    SavefileRecord(bytes: udpFrame(length: 60, seed: 1), wireLength: 60, seconds: 1_700_000_000, nanoseconds: 123_456_789),
    SavefileRecord(bytes: udpFrame(length: 200, seed: 2), wireLength: 1500, seconds: 1_700_000_001, nanoseconds: 1),
    SavefileRecord(bytes: udpFrame(length: 1514, seed: 3), wireLength: 1514, seconds: 1_700_000_001, nanoseconds: 999_999_999),
    SavefileRecord(bytes: udpFrame(length: 61, seed: 4), wireLength: 61, seconds: 1_700_000_002, nanoseconds: 500_000_000),
]

/// The records as a file of `precision` holds them: nanoseconds cut to microseconds at micro.
func stored(_ records: [SavefileRecord], at precision: TimestampPrecision) -> [SavefileRecord] {
    records.map { record in
        var copy = record
        if precision == .micro { copy.nanoseconds = record.nanoseconds / 1000 * 1000 }
        return copy
    }
}

@discardableResult
func write(_ records: [SavefileRecord], to path: String, format: SavefileFormat? = nil, precision: TimestampPrecision = .nano) throws -> SavefileWriter {
    let writer = try SavefileWriter(path: path, format: format, snapLength: 262_144, precision: precision)
    for record in records {
        record.bytes.withUnsafeBytes {
            writer.write(bytes: $0, wireLength: record.wireLength, seconds: record.seconds, nanoseconds: record.nanoseconds)
        }
    }
    try writer.close()
    return writer
}

typealias Outcome = ProgramOutcome

/// Runs a program to its end (WirecapTestSupport).
func run(_ executable: String, _ arguments: [String]) throws -> Outcome { try runProgram(executable, arguments) }

func locate(_ tool: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin:/bin"
    return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

let tcpdump = locate("tcpdump")
let tshark = locate("tshark")

/// tcpdump's test captures, ../shared/traces/tcpdump-tests beside the package root (this file
/// is Tests/WirecapSavefileTests/…).
let corpus = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/traces/tcpdump-tests")
