import Foundation
import Testing
import WirecapSavefile

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
