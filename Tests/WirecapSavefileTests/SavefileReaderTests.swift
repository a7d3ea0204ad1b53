import Foundation
import Testing
import WirecapSavefile
import WirecapTestSupport

@Suite("Savefile reader: libpcap's records and libpcap's errors")
struct SavefileReaderTests {
    @Test("a truncated file gives the intact records, then one line with libpcap's message", arguments: SavefileFormat.allCases)
    func truncated(format: SavefileFormat) throws {
        let path = temporaryPath("cut.\(format)")
        defer { unlink(path) }
        try write(sampleRecords, to: path, format: format)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        // Into the last record: its header is whole in pcap, cut in pcapng's 32-byte frame.
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: path))
        let reader = try SavefileReader(path: path)
        for expected in sampleRecords.dropLast() { #expect(try reader.next() == expected) }
        let error = try #require(throws: SavefileError.self) { try reader.next() }
        #expect(error.reason.contains("truncated"), "\(error)")
        #expect(error.hint == "the file is truncated or corrupt")
        #expect(error.description.hasPrefix("\(path): truncated ") && !error.description.contains("\n"))
    }

    @Test("a missing file, a directory and a file that is no capture are refused at open, each in one line")
    func unreadable() throws {
        let missing = #expect(throws: SavefileError.self) { try SavefileReader(path: "/nonexistent/wirecap.pcap") }
        // libpcap's message names the path; the error does not repeat it.
        #expect(missing?.description == "/nonexistent/wirecap.pcap: No such file or directory (give a readable pcap or pcapng file)")
        let path = temporaryPath("junk.pcap")
        defer { unlink(path) }
        try Data("this is not a capture file at all".utf8).write(to: URL(fileURLWithPath: path))
        let junk = #expect(throws: SavefileError.self) { try SavefileReader(path: path) }
        #expect(junk?.description == "\(path): unknown file format (give a readable pcap or pcapng file)")
        let empty = temporaryPath("empty.pcap")
        defer { unlink(empty) }
        _ = FileManager.default.createFile(atPath: empty, contents: nil)
        let none = #expect(throws: SavefileError.self) { try SavefileReader(path: empty) }
        #expect(none?.reason.contains("truncated") == true, "\(String(describing: none))")
    }

    /// `bytes` written to a scratch file named `name`, read to the end: the records, and the errors
    /// of the records refused on the way (the reader goes on after a refused record).
    static func readHandMade(_ bytes: [UInt8], name: String, precision: TimestampPrecision = .nano) throws -> (records: [SavefileRecord], errors: [SavefileError], path: String) {
        let path = temporaryPath(name)
        defer { unlink(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try SavefileReader(path: path, precision: precision)
        var records: [SavefileRecord] = []
        var errors: [SavefileError] = []
        while errors.count < 10 {
            do {
                guard let record = try reader.next() else { break }
                records.append(record)
            } catch {
                errors.append(error)
            }
        }
        return (records, errors, path)
    }

    @Test(
        "a pcap sub-second field of one second or more is refused by record number; the records around it are read",
        arguments: [(false, UInt32(1_000_000)), (false, UInt32.max), (true, UInt32(1_000_000_000)), (true, UInt32(0x8000_0000))],
        [TimestampPrecision.micro, .nano])
    func subSecondFieldOutOfRange(file: (nanosecond: Bool, field: UInt32), precision: TimestampPrecision) throws {
        let stamps = [(seconds: UInt32(1_700_000_000), fraction: UInt32(5)), (seconds: 1_700_000_001, fraction: file.field), (seconds: 1_700_000_002, fraction: 7)]
        let (records, errors, path) = try Self.readHandMade(handMadePcap(stamps, nanosecond: file.nanosecond), name: "fraction.pcap", precision: precision)
        // The records on either side are read; only the damaged one is refused.
        #expect(records.map(\.seconds) == [1_700_000_000, 1_700_000_002], "read as \(records)")
        #expect(records.allSatisfy { (0..<1_000_000_000).contains($0.nanoseconds) })
        let refusal = try #require(errors.count == 1 ? errors.first : nil, "refused: \(errors)")
        #expect(refusal.description.hasPrefix("\(path): record 2 has a damaged timestamp: its sub-second field"), "\(refusal)")
        #expect(!refusal.description.contains("\n") && refusal.hint.contains("intact"), "\(refusal)")
    }

    @Test("a pcapng time past 2^63 seconds (whole-second resolution) is refused, not wrapped to a negative time")
    func pcapngTimeOverflow() throws {
        // if_tsresol 0: units of 10^0 s, so the count is seconds and libpcap's time_t wraps.
        let (records, errors, path) = try Self.readHandMade(handMadePcapng(timestamp: 1 << 63, tsresol: 0), name: "overflow.pcapng")
        #expect(records.isEmpty, "read as \(records)")
        let refusal = try #require(errors.first)
        #expect(refusal.description.hasPrefix("\(path): record 1 has a damaged timestamp"), "\(refusal)")
        // A large time that fits is read as it is.
        let (fitting, none, _) = try Self.readHandMade(handMadePcapng(timestamp: 4_000_000_000, tsresol: 0), name: "fits.pcapng")
        #expect(none.isEmpty && fitting.map(\.seconds) == [4_000_000_000] && fitting.map(\.nanoseconds) == [0])
    }

    @Test("a pcap record stamped after 2038 reads back with its own seconds (the format's field is unsigned), not a negative time")
    func pcapAfter2038() throws {
        let (records, errors, _) = try Self.readHandMade(handMadePcap([(seconds: 3_000_000_000, fraction: 250)]), name: "2065.pcap")
        #expect(errors.isEmpty)
        #expect(records.map(\.seconds) == [3_000_000_000] && records.map(\.nanoseconds) == [250_000])
    }

    @Test("borrowed records are libpcap's, valid until the next read; close ends the file")
    func borrowed() throws {
        let path = temporaryPath("borrowed.pcap")
        defer { unlink(path) }
        try write(sampleRecords, to: path)
        let reader = try SavefileReader(path: path)
        let first = try #require(try reader.nextBorrowed())
        #expect(Array(first.bytes) == sampleRecords[0].bytes && first.wireLength == 60)
        #expect(first.seconds == sampleRecords[0].seconds && first.nanoseconds == sampleRecords[0].nanoseconds)
        #expect(try reader.next() == sampleRecords[1])
        reader.close()
        reader.close()
        #expect(try reader.next() == nil)
    }

    @Test("the corpus's pcapng files and its nanosecond pcap files read as tcpdump reads them")
    func corpusFormats() throws {
        guard let tcpdump else {
            print("SavefileReaderTests: tcpdump not installed; skipped")
            return
        }
        let names = ["ahcp.pcapng", "isis_sr.pcapng", "of13_ericsson.pcapng", "vsock-1.pcapng", "empty.pcapng"]
        var read = 0
        for name in names {
            let path = corpus.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let records = try SavefileReader(path: path).readAll()
            let printed = try run(tcpdump, ["-r", path, "-tt", "--time-stamp-precision=nano", "-nn"])
            // A packet's first line starts with its time; tcpdump indents the lines that follow.
            let stamps = printed.stdout.split(separator: "\n").filter { !($0.first?.isWhitespace ?? true) }.map { String($0.prefix { $0 != " " }) }
            #expect(stamps == records.map { "\($0.seconds).\(String(format: "%09d", $0.nanoseconds))" }, "\(name)")
            read += 1
        }
        if read == 0 { print("SavefileReaderTests: no corpus at \(corpus.path); skipped") }
    }
}
