import Foundation
import Testing
import WirecapEngine
import WirecapTrace

@Suite("pcap files through libpcap")
struct PcapFileTests {
    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-\(getpid())-\(UUID().uuidString)-\(name)").path
    }

    func writeSample(to path: String) throws -> [TraceRecord] {
        let records = [
            TraceRecord(bytes: ethernetFrame(length: 60, seed: 1), wireLength: 60, seconds: 1_700_000_000, nanoseconds: 123_456_789),
            TraceRecord(bytes: ethernetFrame(length: 200, seed: 2), wireLength: 1500, seconds: 1_700_000_001, nanoseconds: 1),
        ]
        let writer = try PcapWriter(path: path, snapLength: 262_144)
        for record in records {
            record.bytes.withUnsafeBytes {
                writer.write(bytes: $0, wireLength: record.wireLength, seconds: record.seconds, nanoseconds: record.nanoseconds)
            }
        }
        try writer.close()
        return records
    }

    @Test("what the writer writes reads back identically, nanoseconds included")
    func roundTrip() throws {
        let path = temporaryPath("rt.pcap")
        defer { unlink(path) }
        let records = try writeSample(to: path)
        let reader = try PcapReader(path: path)
        #expect(reader.linkType == PcapWriter.ethernet)
        #expect(try reader.readAll() == records)
        // The nanosecond pcap magic, so tcpdump knows the precision.
        let magic = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(4)
        #expect(Array(magic) == [0x4d, 0x3c, 0xb2, 0xa1])
    }

    @Test("a truncated file gives libpcap's message after the intact records")
    func truncated() throws {
        let path = temporaryPath("cut.pcap")
        defer { unlink(path) }
        _ = try writeSample(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: path))
        let reader = try PcapReader(path: path)
        #expect(try reader.next() != nil)
        let error = try #require(throws: TraceError.self) { try reader.next() }
        #expect(error.reason.contains("truncated"))
    }

    @Test("a missing or non-pcap file is refused with a reason")
    func unreadable() throws {
        let missing = #expect(throws: TraceError.self) { try PcapReader(path: "/nonexistent/wirecap.pcap") }
        #expect(missing?.description.contains("No such file") == true)
        let path = temporaryPath("junk.pcap")
        defer { unlink(path) }
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: path))
        let junk = #expect(throws: TraceError.self) { try PcapReader(path: path) }
        #expect(junk?.reason.isEmpty == false)
    }

    @Test("an unwritable output path is refused before anything is captured")
    func unwritable() {
        let error = #expect(throws: TraceError.self) { try PcapWriter(path: "/nonexistent/dir/out.pcap", snapLength: 100) }
        #expect(error?.description.contains("-w") == true)
    }
}
