import Foundation
import Testing
import WirecapEngine
import WirecapSavefile

@Suite("Savefile writer: pcap and pcapng, micro and nano")
struct SavefileWriterTests {
    static let combinations: [(SavefileFormat, TimestampPrecision)] = [(.pcap, .micro), (.pcap, .nano), (.pcapng, .micro), (.pcapng, .nano)]

    @Test("what the writer writes, the reader reads back: bytes, lengths, seconds, the fraction at the file's precision", arguments: combinations)
    func roundTrip(format: SavefileFormat, precision: TimestampPrecision) throws {
        let path = temporaryPath("rt.\(format)")
        defer { unlink(path) }
        try write(sampleRecords, to: path, format: format, precision: precision)
        let reader = try SavefileReader(path: path)
        #expect(reader.linkType == LinkType.ethernet && reader.snapLength == 262_144)
        #expect(try reader.readAll() == stored(sampleRecords, at: precision))
        // Read at micro, a nano file is rounded down as libpcap does.
        let micro = try SavefileReader(path: path, precision: .micro)
        #expect(try micro.readAll() == stored(sampleRecords, at: .micro))
    }

    @Test("the file's first bytes say its format and precision: pcap magic, pcapng section and if_tsresol", arguments: combinations)
    func headers(format: SavefileFormat, precision: TimestampPrecision) throws {
        let path = temporaryPath("h.\(format)")
        defer { unlink(path) }
        try write(sampleRecords, to: path, format: format, precision: precision)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        switch format {
        case .pcap:
            // libpcap writes host order: a1b23c4d is the nanosecond magic, a1b2c3d4 microseconds.
            #expect(bytes[0..<4] == (precision == .nano ? [0x4d, 0x3c, 0xb2, 0xa1] : [0xd4, 0xc3, 0xb2, 0xa1]))
        case .pcapng:
            // Section Header Block, little-endian byte-order magic; then an Interface Description
            // Block whose options start with if_tsresol (code 9, length 1): 9 or 6.
            #expect(bytes[0..<4] == [0x0A, 0x0D, 0x0D, 0x0A] && bytes[8..<12] == [0x4D, 0x3C, 0x2B, 0x1A])
            let shbLength = Int(bytes[4]) | Int(bytes[5]) << 8
            #expect(bytes[shbLength..<shbLength + 4] == [1, 0, 0, 0])
            #expect(bytes[(shbLength + 8)..<(shbLength + 10)] == [1, 0])  // LINKTYPE_ETHERNET
            #expect(bytes[(shbLength + 16)..<(shbLength + 21)] == [9, 0, 1, 0, precision == .nano ? 9 : 6])
        }
    }

    @Test("tcpdump reads every file and prints the timestamps the records carry", arguments: combinations)
    func tcpdumpReads(format: SavefileFormat, precision: TimestampPrecision) throws {
        guard let tcpdump else {
            print("SavefileWriterTests: tcpdump not installed (apt-get install tcpdump); skipped reading with it")
            return
        }
        let path = temporaryPath("tcpdump.\(format)")
        defer { unlink(path) }
        try write(sampleRecords, to: path, format: format, precision: precision)
        let outcome = try run(tcpdump, ["-r", path, "-tt", "--time-stamp-precision=nano", "-nn"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("link-type EN10MB"), "\(outcome.stderr)")
        let lines = outcome.stdout.split(separator: "\n")
        let expected = stored(sampleRecords, at: precision).map { "\($0.seconds).\(String(format: "%09d", $0.nanoseconds)) IP 198.18.0.1.1024 > 198.19.0.1.5000: UDP" }
        #expect(lines.count == expected.count)
        for (line, prefix) in zip(lines, expected) { #expect(line.hasPrefix(prefix), "\(line)") }
    }

    @Test("tshark reads every file: times, lengths on the wire and captured (when installed)", arguments: combinations)
    func tsharkReads(format: SavefileFormat, precision: TimestampPrecision) throws {
        guard let tshark else {
            print("SavefileWriterTests: tshark not installed (apt-get install tshark); skipped reading with it")
            return
        }
        let path = temporaryPath("tshark.\(format)")
        defer { unlink(path) }
        try write(sampleRecords, to: path, format: format, precision: precision)
        let outcome = try run(tshark, ["-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let expected = stored(sampleRecords, at: precision).map { "\($0.seconds).\(String(format: "%09d", $0.nanoseconds))\t\($0.wireLength)\t\($0.bytes.count)" }
        #expect(outcome.stdout.split(separator: "\n").map(String.init) == expected)
    }

    @Test("a borrowed Packet is written as its bytes, wire length and time")
    func packets() throws {
        for format in SavefileFormat.allCases {
            let path = temporaryPath("packet.\(format)")
            defer { unlink(path) }
            let writer = try SavefileWriter(path: path, format: format, snapLength: 65535)
            for record in sampleRecords {
                record.bytes.withUnsafeBytes {
                    writer.write(
                        Packet(bytes: $0, wireLength: record.wireLength, seconds: UInt32(record.seconds), nanoseconds: UInt32(record.nanoseconds), queue: 3))
                }
            }
            try writer.close()
            #expect(try SavefileReader(path: path).readAll() == sampleRecords, "\(format)")
        }
    }

    @Test("the format follows the name unless the caller chooses: .pcapng is pcapng, anything else pcap")
    func formatFromName() throws {
        #expect(SavefileFormat(path: "out.pcapng") == .pcapng && SavefileFormat(path: "/x/OUT.PCAPNG") == .pcapng)
        #expect(SavefileFormat(path: "out.pcap") == .pcap && SavefileFormat(path: "out") == .pcap && SavefileFormat(path: "-") == .pcap)
        let named = temporaryPath("named.pcapng")
        let chosen = temporaryPath("chosen.pcapng")
        defer { unlink(named); unlink(chosen) }
        #expect(try write(sampleRecords, to: named).format == .pcapng)
        #expect(try write(sampleRecords, to: chosen, format: .pcap).format == .pcap)
        #expect(try Data(contentsOf: URL(fileURLWithPath: named)).prefix(4) == Data([0x0A, 0x0D, 0x0D, 0x0A]))
        #expect(try Data(contentsOf: URL(fileURLWithPath: chosen)).prefix(4) == Data([0x4d, 0x3c, 0xb2, 0xa1]))
    }

    @Test("other link types: pcapng stores libpcap's LINKTYPE_ number, and both formats read back as the DLT_ value")
    func linkTypes() throws {
        // DLT_RAW is 12 on Linux and LINKTYPE_RAW 101 in files; LINUX_SLL is 113 in both.
        for (dlt, stored) in [(Int32(12), UInt8(101)), (113, 113)] {
            for format in SavefileFormat.allCases {
                let path = temporaryPath("link.\(format)")
                defer { unlink(path) }
                let writer = try SavefileWriter(path: path, format: format, linkType: dlt, snapLength: 65535)
                let packet: [UInt8] = [0x45] + [UInt8](repeating: 0, count: 19)
                packet.withUnsafeBytes { writer.write(bytes: $0, wireLength: 20, seconds: 1, nanoseconds: 2) }
                try writer.close()
                #expect(try SavefileReader(path: path).linkType == dlt, "\(format) \(dlt)")
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                let field = format == .pcap ? 20 : (Int(bytes[4]) | Int(bytes[5]) << 8) + 8
                #expect(bytes[field] == stored, "\(format) \(dlt)")
            }
        }
        #expect(LinkType.name(113) == "LINUX_SLL (113)" && LinkType.name(1) == "EN10MB (1)")
    }

    @Test("an unwritable path is one line naming the path, the reason and the fix")
    func unwritable() {
        for format in SavefileFormat.allCases {
            let error = #expect(throws: SavefileError.self) { try SavefileWriter(path: "/nonexistent/dir/out", format: format, snapLength: 100) }
            #expect(error?.description == "/nonexistent/dir/out: No such file or directory (choose a writable path)", "\(format)")
        }
        let directory = #expect(throws: SavefileError.self) { try SavefileWriter(path: "/tmp", format: .pcapng, snapLength: 100) }
        #expect(directory?.reason == "Is a directory")
        let snap = #expect(throws: SavefileError.self) { try SavefileWriter(path: "/dev/null", snapLength: 0) }
        #expect(snap?.description == "/dev/null: snap length 0 is out of range (give 1 to 2147483647 bytes)")
    }

    @Test("a write the file system refuses is reported by flush or close, with the path and the fix")
    func fullDevice() throws {
        for format in SavefileFormat.allCases {
            // /dev/full takes the open and refuses every write with ENOSPC.
            let writer = try SavefileWriter(path: "/dev/full", format: format, snapLength: 65535)
            sampleRecords[0].bytes.withUnsafeBytes { writer.write(bytes: $0, wireLength: 60, seconds: 1, nanoseconds: 0) }
            let flushed = #expect(throws: SavefileError.self) { try writer.flush() }
            #expect(flushed?.description == "/dev/full: writing failed: No space left on device (check free space on the file system)", "\(format)")
            #expect(throws: SavefileError.self) { try writer.close() }
            #expect(!writer.isOpen)
        }
    }

    @Test("close twice is harmless, writes after close are dropped, flush leaves a complete file")
    func lifeCycle() throws {
        for format in SavefileFormat.allCases {
            let path = temporaryPath("life.\(format)")
            defer { unlink(path) }
            let writer = try SavefileWriter(path: path, format: format, snapLength: 65535)
            sampleRecords[0].bytes.withUnsafeBytes { writer.write(bytes: $0, wireLength: 60, seconds: 5, nanoseconds: 6) }
            try writer.flush()
            // Complete at the record boundary while the writer is still open.
            #expect(try SavefileReader(path: path).readAll().count == 1, "\(format)")
            try writer.close()
            try writer.close()
            sampleRecords[1].bytes.withUnsafeBytes { writer.write(bytes: $0, wireLength: 60, seconds: 5, nanoseconds: 6) }
            #expect(try SavefileReader(path: path).readAll().count == 1, "\(format)")
        }
    }

    @Test("an empty record and a record longer than pcapng's buffer are written whole")
    func extremes() throws {
        let path = temporaryPath("big.pcapng")
        defer { unlink(path) }
        let large = [UInt8](repeating: 0xab, count: 3 << 20 | 1)
        let writer = try SavefileWriter(path: path, snapLength: large.count)
        [UInt8]().withUnsafeBytes { writer.write(bytes: $0, wireLength: 0, seconds: 1, nanoseconds: 0) }
        large.withUnsafeBytes { writer.write(bytes: $0, wireLength: large.count, seconds: 2, nanoseconds: 0) }
        try writer.close()
        // libpcap refuses records over its own limit (256 KiB for Ethernet), so walk the blocks here.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        var offset = u32(4)
        offset += u32(offset + 4)  // the interface
        #expect(u32(offset) == 6 && u32(offset + 4) == 32 && u32(offset + 20) == 0)
        offset += 32
        let padded = (large.count + 3) & ~3
        #expect(u32(offset) == 6 && u32(offset + 4) == 32 + padded && u32(offset + 20) == large.count)
        #expect(bytes[offset + 28] == 0xab && bytes[offset + 28 + large.count - 1] == 0xab && bytes[offset + 28 + large.count] == 0)
        #expect(u32(offset + 28 + padded) == 32 + padded && offset + 32 + padded == bytes.count)
    }
}
