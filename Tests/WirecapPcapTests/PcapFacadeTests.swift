import Foundation
import Testing
import WirecapEngine
import WirecapPcap
import WirecapSavefile

/// The offline half of the libpcap facade, checked against libpcap's own consumer, tcpdump.
@Suite("libpcap facade over savefiles")
struct PcapFacadeTests {
    /// ../shared/traces/tcpdump-tests beside the package root (this file is Tests/WirecapEngineTests/…).
    static let corpus: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/traces/tcpdump-tests")

    static let tcpdump: String? = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump", "/usr/local/bin/tcpdump", "/usr/local/sbin/tcpdump"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A flat file in the temporary directory: tcpdump, run as root, drops to its own user
    /// before writing, so it must be able to write there (a private 0700 directory would not do).
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-facade-\(getpid())-\(UUID().uuidString)-\(name)").path
    }

    /// Runs a command and returns its standard output and exit status; standard error is dropped
    /// (it carries tcpdump's banner and, for damaged files, its error, which goes to stdout's end).
    static func run(_ executable: String, _ arguments: [String]) throws -> (output: Data, status: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (output, process.terminationStatus)
    }

    static func corpusFiles() -> [URL]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: corpus.path) else { return nil }
        return names.sorted().map { corpus.appendingPathComponent($0) }
    }

    /// Every record libpcap reads before the end or the damage, and the error if there was one.
    static func readRecords(_ path: String) -> (records: [SavefileRecord], error: String?) {
        guard let reader = try? SavefileReader(path: path) else { return ([], "unreadable") }
        var records: [SavefileRecord] = []
        do {
            while let record = try reader.next() { records.append(record) }
            return (records, nil)
        } catch {
            return (records, error.description)
        }
    }

    /// What `handle` hands over before the end or the damage, with its timestamps as libpcap reads
    /// them (SavefileReader refuses the damaged ones some fuzzed records carry, which tcpdump
    /// copies as they are). next() keeps libpcap's fraction whole: some fuzzed records carry
    /// microsecond fields over 4.29 s, more nanoseconds than a borrowed Packet's 32 bits hold.
    /// Seconds are compared as a pcap record holds them, in 32 bits: a pcapng file of the corpus
    /// has times past 2106.
    static func libpcapRecords(_ handle: PcapHandle) -> (records: [SavefileRecord], error: PcapError?) {
        var records: [SavefileRecord] = []
        do {
            while let packet = try handle.next() {
                records.append(
                    SavefileRecord(
                        bytes: packet.bytes, wireLength: packet.len, seconds: Int(Int32(truncatingIfNeeded: packet.seconds)),
                        nanoseconds: packet.nanoseconds))
            }
            return (records, nil)
        } catch {
            return (records, error)
        }
    }

    // MARK: round trip

    @Test("every Ethernet file of the corpus, read at nano precision and dumped, prints the same in tcpdump")
    func roundTrip() throws {
        guard let files = Self.corpusFiles() else {
            print("skipped: no corpus at \(Self.corpus.path)")
            return
        }
        let start = ContinuousClock.now
        var unreadable: [String] = []
        var damaged: [String] = []
        var compared = 0
        var otherLinkTypes = 0
        for file in files {
            let handle: PcapHandle
            do {
                handle = try PcapHandle.openOffline(path: file.path, precision: .nano)
            } catch {
                unreadable.append("\(file.lastPathComponent): \(error.message)")
                continue
            }
            guard try handle.datalink == 1 else {
                otherLinkTypes += 1
                continue
            }
            let copy = Self.temporaryPath("copy.pcap")
            defer { unlink(copy) }
            let dumper = try handle.dumpOpen(path: copy)
            var records = 0
            do {
                // The borrowed path: each packet goes from libpcap's buffer to pcap_dump uncopied.
                records = try handle.loop { try? dumper.dump($0) }.processed
            } catch {
                damaged.append("\(file.lastPathComponent): \(error.message)")
            }
            try dumper.close()
            handle.close()
            compared += 1

            if let tcpdump = Self.tcpdump {
                let arguments = ["-nn", "--time-stamp-precision=nano", "-r"]
                let original = try Self.run(tcpdump, arguments + [file.path])
                let copied = try Self.run(tcpdump, arguments + [copy])
                #expect(original.output == copied.output, "tcpdump prints \(file.lastPathComponent) and its copy differently")
                #expect(copied.status == 0, "tcpdump fails on the copy of \(file.lastPathComponent)")
                // Two empty outputs would compare equal: make sure tcpdump did print the packets.
                #expect(records == 0 || !original.output.isEmpty, "tcpdump prints nothing for \(file.lastPathComponent)")
            } else {
                let original = Self.readRecords(file.path)
                let copied = Self.readRecords(copy)
                #expect(copied.error == nil)
                #expect(original.records == copied.records, "\(file.lastPathComponent) and its copy differ")
            }
        }
        if Self.tcpdump == nil { print("tcpdump is not installed: compared record by record with SavefileReader instead") }
        print("round trip: \(compared) Ethernet files compared, \(otherLinkTypes) of other link types skipped, in \(ContinuousClock.now - start)")
        print("libpcap cannot open \(unreadable.count) files" + unreadable.map { "\n  " + $0 }.joined())
        print("libpcap stops with an error inside \(damaged.count) Ethernet files (intact records compared)" + damaged.map { "\n  " + $0 }.joined())
        #expect(compared > 300)
    }

    // MARK: filters

    static let expressions = [
        "tcp", "udp", "icmp", "icmp6", "arp", "rarp", "ip", "ip6", "vlan", "vlan and ip", "vlan 100", "vlan and vlan",
        "mpls", "udp port 53", "port 53", "tcp port 179", "port 7000 or port 7001", "src port 67", "dst port 68",
        "portrange 7000-7009", "tcp portrange 1-1023", "udp dst portrange 1024-65535",
        "host 10.0.0.1", "src host 192.168.1.1", "net 10.0.0.0/8", "net 192.168.0.0/16", "dst net 224.0.0.0/4",
        "ip multicast", "ether broadcast", "ether multicast", "ether[0] & 1 = 1", "ether[0] & 1 = 0",
        "ether host ff:ff:ff:ff:ff:ff", "ether src 00:00:0c:07:ac:01", "ether proto 0x88cc", "ether[12:2] = 0x0800",
        "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn", "tcp[tcpflags] & tcp-fin != 0",
        "tcp[tcpflags] & tcp-rst != 0", "tcp[tcpflags] & tcp-push != 0", "tcp[13] = 0x18",
        "less 100", "greater 500", "len >= 1000", "len < 64",
        "ip and not udp", "not ip and not ip6", "tcp or arp", "udp and not port 53", "(tcp or udp) and ip6",
        "ip[8] = 1", "ip[9] = 17", "ip proto 112", "ip proto \\pim", "pim", "vrrp", "igmp",
        "ip6 and udp", "ip6 multicast", "ip6[6] = 58", "icmp[icmptype] = icmp-echo", "icmp[icmptype] != icmp-echoreply",
        "udp[8:2] > 0", "ip[2:2] > 576", "ip[6:2] & 0x3fff != 0", "llc", "stp", "not ether proto 0x8100",
        "ether[12:2] = 0x8100 or ether[12:2] = 0x88a8",
    ]

    /// The corpus's Ethernet files that libpcap opens, in name order, except that one with the
    /// largest snap length comes first: tcpdump -V -w gives its output the first file's snap
    /// length, and libpcap would cut longer records when reading that output back.
    static func ethernetFiles() -> [String] {
        var files: [(path: String, snapshot: Int)] = []
        for path in (corpusFiles() ?? []).map(\.path) {
            guard let handle = try? PcapHandle.openOffline(path: path) else { continue }
            defer { handle.close() }
            if (try? handle.datalink) == 1, let snapshot = try? handle.snapshot { files.append((path, snapshot)) }
        }
        if let widest = files.indices.max(by: { files[$0].snapshot < files[$1].snapshot }) {
            files.insert(files.remove(at: widest), at: 0)
        }
        return files.map(\.path)
    }

    @Test("filters accept exactly the packets tcpdump accepts, over every Ethernet file of the corpus")
    func filters() throws {
        guard let tcpdump = Self.tcpdump else {
            print("skipped: tcpdump is not installed")
            return
        }
        let files = Self.ethernetFiles()
        guard files.count > 300 else {
            print("skipped: no corpus at \(Self.corpus.path)")
            return
        }
        let start = ContinuousClock.now
        // tcpdump reads the whole list in one run (-V) and writes what passes into one file. At
        // microsecond precision: with -V, tcpdump opens the files after the first at its default
        // precision, whatever --time-stamp-precision says.
        let list = Self.temporaryPath("files.txt")
        defer { unlink(list) }
        try (files.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        var accepted = 0
        for expression in Self.expressions {
            var ours: [SavefileRecord] = []
            for path in files {
                let handle = try PcapHandle.openOffline(path: path, precision: .micro)
                try handle.setFilter(expression)
                // A damaged file gives its intact records, then libpcap's error; tcpdump goes on
                // to the next file in the same way.
                ours += Self.libpcapRecords(handle).records
                handle.close()
            }
            let out = Self.temporaryPath("filtered.pcap")
            defer { unlink(out) }
            let result = try Self.run(tcpdump, ["-s", "262144", "-V", list, "-w", out, expression])
            #expect(result.status == 0, "tcpdump fails with '\(expression)'")
            let written = try PcapHandle.openOffline(path: out, precision: .micro)
            let theirs = Self.libpcapRecords(written)
            written.close()
            #expect(theirs.error == nil)
            let firstDifference = zip(ours, theirs.records).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(ours.count, theirs.records.count)
            #expect(
                ours == theirs.records,
                "'\(expression)': facade \(ours.count), tcpdump \(theirs.records.count) packets, first difference at record \(firstDifference)")
            accepted += ours.count
        }
        print("filters: \(Self.expressions.count) expressions over \(files.count) Ethernet files, \(accepted) packets accepted in all, in \(ContinuousClock.now - start)")
        #expect(accepted > 10_000, "the expressions do match packets")
    }

    // MARK: errors and the rest of the API

    static func firstEthernetFile() -> String? {
        let path = corpus.appendingPathComponent("afs.pcap").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    @Test("a bad filter throws libpcap's message")
    func badFilter() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let handle = try PcapHandle.openOffline(path: path)
        #expect {
            try handle.setFilter("tcp and and port")
        } throws: { ($0 as? PcapError)?.message.contains("syntax error") == true }
        #expect {
            try handle.setFilter("ip broadcast")
        } throws: { ($0 as? PcapError)?.message.contains("netmask") == true }
        #expect(throws: PcapError.self) { try handle.setFilter("port 99999") }
        // The handle still works after a refused filter.
        #expect(try handle.next() != nil)
    }

    @Test("a missing file throws libpcap's message")
    func missingFile() {
        #expect {
            _ = try PcapHandle.openOffline(path: "/nonexistent/wirecap.pcap")
        } throws: { ($0 as? PcapError)?.message == "/nonexistent/wirecap.pcap: No such file or directory" }
    }

    @Test("a truncated file gives the intact records, then libpcap's message")
    func truncatedFile() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let all = Self.readRecords(path).records
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = Self.temporaryPath("cut.pcap")
        defer { unlink(cut) }
        // 24-byte file header, then records of 16 + caplen bytes: cut 5 bytes into the 4th record.
        let end = 24 + all.prefix(3).reduce(0) { $0 + 16 + $1.bytes.count } + 5
        try data.prefix(end).write(to: URL(fileURLWithPath: cut))

        let handle = try PcapHandle.openOffline(path: cut, precision: .nano)
        for expected in all.prefix(3) {
            let packet = try #require(try handle.next())
            #expect(packet.bytes == expected.bytes && packet.seconds == expected.seconds && packet.fraction == expected.nanoseconds)
        }
        #expect {
            _ = try handle.next()
        } throws: { ($0 as? PcapError)?.message.contains("truncated dump file") == true }

        let again = try PcapHandle.openOffline(path: cut)
        var seen = 0
        #expect {
            try again.dispatch { _ in seen += 1 }
        } throws: { ($0 as? PcapError)?.message.contains("truncated dump file") == true }
        #expect(seen == 3)
    }

    @Test("use after close throws, never crashes")
    func useAfterClose() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let handle = try PcapHandle.openOffline(path: path)
        let copy = Self.temporaryPath("closed.pcap")
        defer { unlink(copy) }
        let dumper = try handle.dumpOpen(path: copy)
        let packet = try #require(try handle.next())
        try dumper.dump(packet)
        try dumper.close()
        try dumper.close()
        #expect(throws: PcapError.closed) { try dumper.dump(packet) }
        #expect(throws: PcapError.closed) { try dumper.flush() }
        handle.close()
        handle.close()
        handle.breakLoop()
        #expect(throws: PcapError.closed) { try handle.next() }
        #expect(throws: PcapError.closed) { try handle.datalink }
        #expect(throws: PcapError.closed) { try handle.snapshot }
        #expect(throws: PcapError.closed) { try handle.setFilter("tcp") }
        #expect(throws: PcapError.closed) { try handle.dispatch { _ in } }
        #expect(throws: PcapError.closed) { try handle.stats() }
        #expect(throws: PcapError.closed) { _ = try handle.dumpOpen(path: copy) }
        #expect(throws: PcapError.closed) { try handle.inject([0]) }
        #expect(throws: PcapError.closed) { try handle.setDirection(.in) }
        #expect(throws: PcapError.closed) { try handle.setNonblocking(true) }
        #expect(throws: PcapError.closed) { try handle.selectableFileDescriptor }
        #expect(throws: PcapError.closed) { try handle.engineStatistics() }
    }

    @Test("what only a live capture can do gives libpcap's messages on a savefile")
    func liveOnlyCalls() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let handle = try PcapHandle.openOffline(path: path)
        #expect(!handle.isLive)
        #expect {
            try handle.inject([UInt8](repeating: 0, count: 60))
        } throws: { ($0 as? PcapError)?.message.contains("savefile") == true }
        #expect {
            try handle.setDirection(.in)
        } throws: { ($0 as? PcapError)?.message.contains("savefile") == true }
        #expect {
            _ = try handle.engineStatistics()
        } throws: { ($0 as? PcapError)?.message.contains("savefile") == true }
        #expect {
            try handle.setNonblocking(true)
        } throws: { ($0 as? PcapError)?.message.contains("non-blocking") == true }
        // libpcap's selectable descriptor for a file is the file's own; reading goes on.
        #expect(try handle.selectableFileDescriptor >= 0)
        #expect(try handle.next() != nil)
        handle.close()
    }

    @Test("savefiles have no statistics: stats() throws libpcap's message")
    func statistics() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let handle = try PcapHandle.openOffline(path: path)
        #expect {
            _ = try handle.stats()
        } throws: { ($0 as? PcapError)?.message.contains("savefile") == true }
    }

    struct Counter: PacketHandler {
        var packets = 0
        var bytes = 0
        var batches = 0
        let limit: Int
        let handle: PcapHandle
        mutating func handle(_ packet: Packet) {
            packets += 1
            bytes += packet.capturedLength
            if packets == limit { handle.breakLoop() }
        }
        mutating func blockDone(queue: Int) { batches += 1 }
    }

    @Test("loop, dispatch, counts, breakLoop and precision")
    func loopAndBreak() throws {
        guard let path = Self.firstEthernetFile() else { print("skipped: no corpus"); return }
        let all = Self.readRecords(path).records
        #expect(all.count > 100)

        // A generic handler that breaks the loop after 10 packets.
        let handle = try PcapHandle.openOffline(path: path, precision: .nano)
        #expect(try handle.snapshot > 0)
        var counter = Counter(limit: 10, handle: handle)
        let broken = try handle.loop(handler: &counter)
        #expect(broken == LoopResult(processed: 10, interrupted: true))
        #expect(counter.packets == 10 && counter.batches == 1)
        // Counted dispatch and loop continue where it stopped.
        let five = try handle.dispatch(count: 5) { _ in }
        #expect(five == LoopResult(processed: 5, interrupted: false))
        let next = try #require(try handle.next())
        #expect(next.bytes == all[15].bytes && next.fraction == all[15].nanoseconds && next.precision == .nano)
        var rest = 0
        #expect(try handle.loop { _ in rest += 1 } == LoopResult(processed: all.count - 16, interrupted: false))
        #expect(rest == all.count - 16)
        #expect(try handle.next() == nil)

        // Micro precision: libpcap's microseconds, and the borrowed packet's nanoseconds are them × 1000.
        let micro = try PcapHandle.openOffline(path: path, precision: .micro)
        let first = try #require(try micro.next())
        #expect(first.precision == .micro && first.fraction == all[0].nanoseconds / 1000)
        var second: UInt32 = 0
        try micro.dispatch(count: 1) { second = $0.nanoseconds }
        #expect(Int(second) == all[1].nanoseconds / 1000 * 1000)

        // breakLoop from another thread ends a running loop.
        let slow = try PcapHandle.openOffline(path: path)
        var spawned = false
        let result = try slow.loop { _ in
            if !spawned {
                spawned = true
                Thread.detachNewThread { slow.breakLoop() }
            }
            Thread.sleep(forTimeInterval: 0.002)
        }
        #expect(result.interrupted && result.processed < all.count)
    }
}

@Suite("pcap facade, async packets")
struct PcapAsyncTests {
    @Test("a file's packets through for-await equal libpcap's records")
    func offlineStream() async throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/traces/pcapplusplus/example.pcap").path
        guard FileManager.default.fileExists(atPath: corpus) else {
            print("skipped: \(corpus) is not there (../shared beside the checkout)")
            return
        }
        let expected = try SavefileReader(path: corpus).readAll()
        var count = 0
        var same = true
        let handle = try PcapHandle.openOffline(path: corpus, precision: .nano)
        for try await packet in handle.packets() {
            if count < expected.count {
                same = same && packet.bytes == expected[count].bytes && packet.len == expected[count].wireLength
            }
            count += 1
        }
        handle.close()
        #expect(count == expected.count)
        #expect(same)
    }
}
