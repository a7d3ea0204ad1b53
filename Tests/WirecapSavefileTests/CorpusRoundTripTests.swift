import Foundation
import Testing
import WirecapSavefile

/// tcpdump's own captures, every link type: read by the reader, written again in both formats,
/// and printed by tcpdump the same as the original.
@Suite("Savefile round trip over tcpdump's corpus")
struct CorpusRoundTripTests {
    @Test("every file libpcap opens whose timestamps are intact, copied to pcap and to pcapng at nanosecond precision, prints the same in tcpdump")
    func corpusCopies() throws {
        guard let tcpdump else {
            print("CorpusRoundTripTests: tcpdump not installed; skipped")
            return
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: corpus.path) else {
            print("CorpusRoundTripTests: no corpus at \(corpus.path); skipped")
            return
        }
        let start = ContinuousClock.now
        var compared = 0
        var damaged: [String] = []
        var damagedTimes = 0
        var pastPcap = 0
        var pastPcapng = 0
        var unopened = 0
        for name in names.sorted() {
            let original = corpus.appendingPathComponent(name).path
            guard let reader = try? SavefileReader(path: original) else {
                unopened += 1
                continue
            }
            var records: [SavefileRecord] = []
            do {
                while let record = try reader.next() { records.append(record) }
            } catch where error.isDamagedTimestamp {
                // A fuzzed record whose sub-second field is a second or more: libpcap, and so
                // tcpdump, passes it through; the reader refuses it, so the copy cannot print the
                // same. What the reader refuses is its own test's business (SavefileReaderTests).
                damagedTimes += 1
                continue
            } catch {
                damaged.append(name)  // the intact records are copied; tcpdump prints the same ones
            }
            // pcap holds seconds in 32 bits: a record past 2106 cannot be copied into it. pcapng
            // holds one 64-bit count of nanoseconds: a record past 2554 cannot be either.
            var formats: [SavefileFormat] = []
            if records.allSatisfy({ UInt32(exactly: $0.seconds) != nil }) { formats.append(.pcap) } else { pastPcap += 1 }
            if records.allSatisfy({ (0..<18_000_000_000).contains($0.seconds) }) {
                formats.append(.pcapng)
            } else {
                pastPcapng += 1
            }
            let arguments = ["-nn", "--time-stamp-precision=nano", "-r"]
            let printed = try run(tcpdump, arguments + [original])
            for format in formats {
                let copy = temporaryPath("copy.\(format)")
                defer { unlink(copy) }
                let writer = try SavefileWriter(path: copy, format: format, linkType: reader.linkType, snapLength: reader.snapLength)
                for record in records {
                    record.bytes.withUnsafeBytes {
                        writer.write(bytes: $0, wireLength: record.wireLength, seconds: record.seconds, nanoseconds: record.nanoseconds)
                    }
                }
                try writer.close()
                let copied = try run(tcpdump, arguments + [copy])
                #expect(copied.status == 0, "tcpdump fails on the \(format) copy of \(name): \(copied.stderr)")
                #expect(printed.stdout == copied.stdout, "tcpdump prints \(name) and its \(format) copy differently")
                // Two empty outputs would compare equal: make sure tcpdump did print the packets.
                #expect(records.isEmpty || !printed.stdout.isEmpty, "tcpdump prints nothing for \(name)")
            }
            compared += 1
        }
        print(
            "corpus round trip: \(compared) files copied to pcap and pcapng (\(damaged.count) damaged, intact records only: \(damaged.joined(separator: ", "))), "
                + "\(damagedTimes) with a damaged timestamp refused by the reader, "
                + "\(pastPcap) not to pcap (times past 2106), \(pastPcapng) not to pcapng (times past 2554), "
                + "\(unopened) that libpcap does not open, in \(ContinuousClock.now - start)")
        // 667 files open; 153 of them (fuzzed) hold a damaged timestamp.
        #expect(compared > 500)
    }
}
