import Foundation
import Testing
import WirecapTestSupport
import WirecapSandbox
import WirecapSavefile
import WirecapTraffic

/// `wirecap synth`'s library: what the trace holds (counts, shares, sizes, order), that every
/// frame is well formed (checksums recomputed here, addresses only from the benchmarking
/// ranges), that other tools read it, and that a seed names a file.
@Suite("Synthetic traces")
struct SynthTests {
    static func temporaryPath(_ name: String) -> String { WirecapTestSupport.temporaryPath("synth", name) }

    /// Writes a trace and reads it back through libpcap.
    static func synthesize(_ configuration: SynthConfiguration, name: String = "t.pcap") throws -> (SynthSummary, [SavefileRecord], String) {
        let path = temporaryPath(name)
        let summary = try TraceSynthesizer(configuration: configuration).write(to: path)
        let records = try SavefileReader(path: path).readAll()
        return (summary, records, path)
    }

    // MARK: Frame checks, written independently of the writer

    struct Decoded {
        var ipv6: Bool
        var sequence: UInt64
        var flow: UInt32
        var source: [UInt8]
        var destination: [UInt8]
    }

    /// Ones'-complement sum of 16-bit big-endian words, folded; a correct checksum makes the
    /// sum over the covered bytes 0xffff.
    static func onesComplementSum(_ words: [UInt8], initial: UInt32 = 0) -> UInt16 {
        var sum = initial
        var i = 0
        while i + 1 < words.count {
            sum += UInt32(words[i]) << 8 | UInt32(words[i + 1])
            i += 2
        }
        if i < words.count { sum += UInt32(words[i]) << 8 }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        return UInt16(sum)
    }

    static func be(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

    /// Checks one frame completely and returns what it carries; every failure is an #expect.
    static func decode(_ frame: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Decoded? {
        guard frame.count >= 58 else {
            Issue.record("frame of \(frame.count) bytes is too short", sourceLocation: sourceLocation)
            return nil
        }
        let etherType = be(frame[12..<14])
        let ipv6 = etherType == 0x86DD
        #expect(ipv6 || etherType == 0x0800, "EtherType \(etherType)", sourceLocation: sourceLocation)
        let udpStart: Int
        var pseudo: [UInt8]
        let source: [UInt8]
        let destination: [UInt8]
        if ipv6 {
            #expect(frame.count >= 78, sourceLocation: sourceLocation)
            #expect(frame[14] >> 4 == 6 && frame[20] == 17, sourceLocation: sourceLocation)
            #expect(Int(be(frame[18..<20])) == frame.count - 54, "IPv6 payload length", sourceLocation: sourceLocation)
            source = Array(frame[22..<38])
            destination = Array(frame[38..<54])
            // RFC 8200 8.1: source, destination, upper-layer length (32 bits), 3 zeros, next header.
            let length = frame.count - 54
            pseudo = source + destination + [UInt8(length >> 24 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), 0, 0, 0, 17]
            udpStart = 54
        } else {
            #expect(frame[14] == 0x45 && frame[23] == 17, sourceLocation: sourceLocation)
            #expect(Int(be(frame[16..<18])) == frame.count - 14, "IPv4 total length", sourceLocation: sourceLocation)
            #expect(onesComplementSum(Array(frame[14..<34])) == 0xffff, "IPv4 header checksum", sourceLocation: sourceLocation)
            source = Array(frame[26..<30])
            destination = Array(frame[30..<34])
            let length = frame.count - 34
            pseudo = source + destination + [0, 17, UInt8(length >> 8), UInt8(length & 0xff)]
            udpStart = 34
        }
        let udp = Array(frame[udpStart...])
        #expect(Int(be(udp[4..<6])) == udp.count, "UDP length", sourceLocation: sourceLocation)
        #expect(be(udp[6..<8]) != 0, "UDP checksum present", sourceLocation: sourceLocation)
        #expect(onesComplementSum(pseudo + udp) == 0xffff, "UDP checksum", sourceLocation: sourceLocation)
        #expect(be(udp[8..<12]) == 0x5743_4150, "magic WCAP", sourceLocation: sourceLocation)
        return Decoded(
            ipv6: ipv6, sequence: be(udp[12..<20]), flow: UInt32(be(udp[20..<24])), source: source, destination: destination)
    }

    /// 198.18.0.0/15 for IPv4, 2001:2::/48 for IPv6; nothing else.
    static func inBenchmarkRange(_ address: [UInt8]) -> Bool {
        if address.count == 4 { return address[0] == 198 && (address[1] & 0xFE) == 18 }
        return address.count == 16 && address[0..<6] == [0x20, 0x01, 0x00, 0x02, 0x00, 0x00]
    }

    // MARK: What the trace holds

    @Test("100,000 IMIX packets with an 80 % elephant: counts, share, sizes, order, checksums, addresses, timestamps")
    func imixElephant() throws {
        let configuration = SynthConfiguration(packets: 100_000, frameSizes: .imix, elephantShare: 0.8, seed: 1)
        let (summary, records, path) = try Self.synthesize(configuration)
        defer { unlink(path) }
        #expect(records.count == 100_000)
        #expect(summary.packets == 100_000)

        var flows = Set<UInt32>()
        var flow0 = 0
        var ipv6Packets = 0
        var sizeCounts: [Int: Int] = [:]
        for (index, record) in records.enumerated() {
            guard let frame = Self.decode(record.bytes) else { continue }
            // Every sequence number once, in trace order; the capture side reads it the same way.
            #expect(frame.sequence == UInt64(index))
            #expect(record.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) } == UInt64(index))
            #expect(Self.inBenchmarkRange(frame.source) && Self.inBenchmarkRange(frame.destination))
            #expect(record.wireLength == record.bytes.count)
            // 1,000,000 packets a second from the fixed start: packet i at i microseconds.
            #expect(record.seconds == SynthConfiguration.startSeconds && record.nanoseconds == index * 1000)
            flows.insert(frame.flow)
            if frame.flow == 0 { flow0 += 1 }
            if frame.ipv6 { ipv6Packets += 1 }
            // IMIX records are 60/590/1514 (64/594/1518 on the wire); IPv6 needs 78 for its headers.
            let size = record.bytes.count == 78 && frame.ipv6 ? 60 : record.bytes.count
            sizeCounts[size, default: 0] += 1
        }
        #expect(flows.count == summary.flows)
        #expect(flows.min() == 0 && flows.max() == UInt32(summary.flows - 1))
        #expect(ipv6Packets == summary.ipv6Packets && summary.ipv4Packets + summary.ipv6Packets == 100_000)
        // The elephant's packet count is set (round(S x N)), not drawn: the only error is
        // rounding to a whole packet.
        #expect(abs(Double(flow0) / 100_000 - 0.8) <= 0.5 / 100_000)
        #expect(flow0 == summary.flow0Packets)
        // Sizes are drawn per packet, so the mix is binomial: 5 standard deviations,
        // sqrt(p (1 - p) / N), is what a correct 7:4:1 sampler exceeds with probability < 1e-6.
        #expect(Set(sizeCounts.keys) == [60, 590, 1514])
        for (size, parts) in [(60, 7.0), (590, 4.0), (1514, 1.0)] {
            let p = parts / 12
            let observed = Double(sizeCounts[size, default: 0]) / 100_000
            #expect(abs(observed - p) <= 5 * (p * (1 - p) / 100_000).squareRoot(), "\(size)-byte share \(observed), expected \(p)")
        }
        #expect(summary.bytes == records.reduce(0) { $0 + $1.bytes.count })
    }

    @Test("--packets and --flows together: exact counts, every flow present, a quarter of the flows IPv6, 64 and 78-byte frames")
    func packetsAndFlows() throws {
        let (summary, records, path) = try Self.synthesize(SynthConfiguration(packets: 50_000, flows: 1000, seed: 7))
        defer { unlink(path) }
        #expect(records.count == 50_000 && summary.flows == 1000)
        var flowsByFamily: [Bool: Set<UInt32>] = [:]
        for (index, record) in records.enumerated() {
            guard let frame = Self.decode(record.bytes) else { continue }
            #expect(frame.sequence == UInt64(index))
            #expect(Self.inBenchmarkRange(frame.source) && Self.inBenchmarkRange(frame.destination))
            #expect(record.bytes.count == (frame.ipv6 ? 78 : 64))
            flowsByFamily[frame.ipv6, default: []].insert(frame.flow)
        }
        let ipv6Flows = flowsByFamily[true, default: []].count
        #expect(ipv6Flows + flowsByFamily[false, default: []].count == 1000)
        #expect(flowsByFamily[true, default: []].isDisjoint(with: flowsByFamily[false, default: []]))
        // Evenly spaced from a random phase: 250 give or take one.
        #expect((249...251).contains(ipv6Flows) && ipv6Flows == summary.ipv6Flows)
    }

    @Test("--flows alone: the packet count follows from the drawn flow sizes; an elephant share on top")
    func flowsAlone() throws {
        let random = SynthConfiguration(flows: 2000, ipv6Share: 0, seed: 3)
        let synthesizer = try TraceSynthesizer(configuration: random)
        #expect(synthesizer.plan.flows == 2000 && synthesizer.plan.sizes.allSatisfy { $0 >= 1 })
        // P(one packet) = 1 - 2^-1.2 = 0.565 under Pareto(1.2, 1) rounded down; binomial 5 sigma.
        let singles = Double(synthesizer.plan.sizes.filter { $0 == 1 }.count) / 2000
        #expect(abs(singles - 0.5647) <= 5 * (0.5647 * 0.4353 / 2000).squareRoot(), "single-packet flows \(singles)")

        var withElephant = random
        withElephant.elephantShare = 0.5
        let (summary, records, path) = try Self.synthesize(withElephant)
        defer { unlink(path) }
        #expect(records.count == summary.packets && summary.flows == 2000 && summary.ipv6Packets == 0)
        #expect(abs(summary.elephantShare - 0.5) <= 0.5 / Double(summary.packets))
        #expect(records.filter { Self.decode($0.bytes)?.flow == 0 }.count == summary.flow0Packets)
    }

    @Test("flow sizes follow Pareto(shape 1.2, minimum 1): P(size >= k) = k^-1.2")
    func paretoTail() {
        var random = SplitMix64(seed: 42)
        let model = FlowSizeModel()
        #expect(model.shape == 1.2 && model.minimum == 1 && abs(model.mean - 6) < 1e-9)
        let n = 200_000
        let sizes = (0..<n).map { _ in model.draw(&random) }
        #expect(sizes.min() == 1)
        for k in [2, 10, 100, 1000] {
            let p = pow(Double(k), -1.2)
            let observed = Double(sizes.filter { $0 >= k }.count) / Double(n)
            #expect(abs(observed - p) <= 5 * (p * (1 - p) / Double(n)).squareRoot(), "P(size >= \(k)) = \(observed), expected \(p)")
        }
    }

    @Test("the interleaver places every packet of every flow once")
    func interleaver() {
        let sizes = [5, 1, 0, 300, 7, 1, 1]
        var interleaver = FlowInterleaver(sizes: sizes)
        var random = SplitMix64(seed: 9)
        var counts = [Int](repeating: 0, count: sizes.count)
        var order: [Int] = []
        while let flow = interleaver.next(&random) {
            counts[flow] += 1
            order.append(flow)
        }
        #expect(counts == sizes)
        // Flow 3 holds 300 of 315 packets: it is spread over the trace, not bunched at one end.
        #expect(order.prefix(100).filter { $0 == 3 }.count > 80 && order.suffix(100).filter { $0 == 3 }.count > 80)
    }

    // MARK: Files

    @Test("the same seed gives the same bytes, another seed other bytes, in pcap and pcapng")
    func seeds() throws {
        for format in [SynthConfiguration.Format.pcap, .pcapng] {
            var configuration = SynthConfiguration(packets: 20_000, frameSizes: .imix, elephantShare: 0.3, seed: 11, format: format)
            let first = Self.temporaryPath("a"), second = Self.temporaryPath("b"), again = Self.temporaryPath("c"), other = Self.temporaryPath("d")
            defer { for path in [first, second, again, other] { unlink(path) } }
            let synthesizer = try TraceSynthesizer(configuration: configuration)
            _ = try synthesizer.write(to: first)
            _ = try TraceSynthesizer(configuration: configuration).write(to: second)
            _ = try synthesizer.write(to: again)  // a second write of the same synthesizer
            configuration.seed = 12
            _ = try TraceSynthesizer(configuration: configuration).write(to: other)
            let a = try Data(contentsOf: URL(fileURLWithPath: first))
            #expect(a == (try Data(contentsOf: URL(fileURLWithPath: second))), "\(format)")
            #expect(a == (try Data(contentsOf: URL(fileURLWithPath: again))), "\(format)")
            #expect(a != (try Data(contentsOf: URL(fileURLWithPath: other))), "\(format)")
        }
    }

    @Test("pcapng holds the same records as pcap, nanoseconds included (the blocks themselves: SavefileWriterTests)")
    func pcapng() throws {
        var configuration = SynthConfiguration(packets: 5000, frameSizes: .imix, seed: 5, packetsPerSecond: 333_333)
        let (_, pcapRecords, pcapPath) = try Self.synthesize(configuration)
        configuration.format = .pcapng
        let (summary, pcapngRecords, pcapngPath) = try Self.synthesize(configuration, name: "t.pcapng")
        defer { unlink(pcapPath); unlink(pcapngPath) }
        #expect(pcapngRecords == pcapRecords && summary.packets == 5000)
        #expect(pcapRecords[3].nanoseconds == 9000)  // 3 x 3000.003 ns, rounded
        #expect(try Data(contentsOf: URL(fileURLWithPath: pcapngPath)).prefix(4) == Data([0x0A, 0x0D, 0x0D, 0x0A]))
    }

    @Test("tshark and tcpdump read the trace without complaint and find every checksum good (when installed)")
    func otherTools() throws {
        for format in [SynthConfiguration.Format.pcap, .pcapng] {
            let configuration = SynthConfiguration(packets: 20_000, frameSizes: .imix, elephantShare: 0.5, ipv6Share: 0.5, seed: 2, format: format)
            let (_, _, path) = try Self.synthesize(configuration, name: "tools.\(format)")
            defer { unlink(path) }
            if let tshark = Self.locate("tshark") {
                let plain = try Self.run(tshark, ["-r", path])
                #expect(plain.status == 0 && Self.complaints(plain.stderr).isEmpty, "tshark: \(plain.stderr)")
                #expect(plain.stdout.split(separator: "\n").count == 20_000)
                // Wireshark checks neither checksum by default; with both on, every one is Good.
                let good = try Self.run(
                    tshark, ["-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-Y", "udp.checksum.status == \"Good\" && !(ip.checksum.status == \"Bad\")"])
                #expect(good.status == 0 && good.stdout.split(separator: "\n").count == 20_000, "tshark: \(good.stderr)")
            } else {
                print("SynthTests: tshark not installed (apt-get install tshark); skipped reading the \(format) trace with it")
            }
            if let tcpdump = Self.locate("tcpdump") {
                let verbose = try Self.run(tcpdump, ["-r", path, "-nn", "-vv"])
                #expect(verbose.status == 0, "tcpdump: \(verbose.stderr)")
                let lines = verbose.stdout.split(separator: "\n")
                // -vv checks the IPv4 header and UDP checksums: "[udp sum ok]" on every packet,
                // "bad cksum" or "bad udp cksum" on none.
                #expect(lines.filter { $0.contains("udp sum ok") }.count == 20_000)
                #expect(!lines.contains { $0.contains("bad cksum") || $0.contains("bad udp cksum") })
            } else {
                print("SynthTests: tcpdump not installed (apt-get install tcpdump); skipped reading the \(format) trace with it")
            }
        }
    }

    // MARK: Errors

    @Test("size files: read with comments and blank lines, refused with the file and line named")
    func sizeFiles() throws {
        let path = Self.temporaryPath("sizes.txt")
        defer { unlink(path) }
        func sizes(_ text: String) throws(TrafficError) -> FrameSizeModel {
            try! Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return try FrameSizeModel.parse(path)
        }
        #expect(try sizes("# a mix\n60\n\n  1514 \r\n128\n").sizes == [60, 1514, 128])
        for (text, expected, phrases) in [
            ("60\nabc\n", TrafficError.frameSizeLineInvalid(path: path, line: 2, text: "abc"), ["line 2", "'abc' is not a frame size"]),
            ("60\n64\n20\n", .frameSizeLineOutOfRange(path: path, line: 3, size: 20), ["line 3", "20 bytes cannot hold", "58 to 9000"]),
            ("9001\n", .frameSizeLineOutOfRange(path: path, line: 1, size: 9001), ["line 1", "9001 bytes is more than", "58 to 9000"]),
            ("# nothing\n\n", .frameSizeFileEmpty(path: path), ["has no frame sizes"]),
        ] {
            #expect(throws: expected) { try sizes(text) }
            let message = expected.description(naming: { "--" + $0.rawValue })
            for phrase in phrases + ["--frameSize \(path)"] { #expect(message.contains(phrase), "\(message)") }
            #expect(expected.description.hasPrefix("frameSizes \(path)"))
        }
        #expect(try FrameSizeModel.parse("imix") == .imix && FrameSizeModel.parse("128") == .fixed(128))
        #expect(throws: TrafficError.unknownFrameSize("jumbo")) { try FrameSizeModel.parse("jumbo") }
        #expect(TrafficError.unknownFrameSize("jumbo").description.hasPrefix("frameSizes jumbo is not a size, imix, or an existing file"))
        #expect(throws: TrafficError.outOfRange(.frameSize, value: 40, allowed: 58...9000)) { try FrameSizeModel.parse("40") }
        #expect(
            TrafficError.outOfRange(.frameSize, value: 40, allowed: 58...9000).description(naming: { _ in "--size" })
                == "--size 40 is out of range: use 58 to 9000 bytes, imix, or a file of sizes")
    }

    @Test("nonsense numbers and impossible combinations are refused as values naming the option and the fix")
    func refusals() {
        func refusal(_ configuration: SynthConfiguration) -> TrafficError? {
            do {
                _ = try TraceSynthesizer(configuration: configuration)
                return nil
            } catch { return error }
        }
        func text(_ configuration: SynthConfiguration) -> String {
            refusal(configuration)?.description(naming: { "<\($0.rawValue)>" }) ?? "accepted"
        }
        #expect(refusal(SynthConfiguration(packets: 0)) == .outOfRange(.packets, value: 0, allowed: 1...Int.max))
        #expect(text(SynthConfiguration(packets: 0)) == "<packets> 0 is out of range: give 1 or more")
        #expect(refusal(SynthConfiguration(flows: 0)) == .outOfRange(.flows, value: 0, allowed: 1...16_777_216))
        #expect(text(SynthConfiguration(flows: 0)).hasPrefix("<flows> 0 is out of range: use 1 to 16777216"))
        #expect(refusal(SynthConfiguration(elephantShare: 1.5)) == .notAShare(.elephantShare, value: 1.5))
        #expect(text(SynthConfiguration(elephantShare: 1.5)).hasPrefix("<elephantShare> 1.5 is out of range: give a share of the packets from 0 to 1"))
        #expect(refusal(SynthConfiguration(ipv6Share: -0.1)) == .notAShare(.ipv6Share, value: -0.1))
        #expect(refusal(SynthConfiguration(packetsPerSecond: 0)) == .notARate(.packetsPerSecond, value: 0))
        #expect(text(SynthConfiguration(packetsPerSecond: 0)).hasPrefix("<packetsPerSecond> 0 is out of range: give a positive rate"))
        #expect(refusal(SynthConfiguration(packets: 10, flows: 11)) == .packetsCannotFillFlows(packets: 10, flows: 11, minimum: 1))
        #expect(text(SynthConfiguration(packets: 10, flows: 11)).contains("<packets> 10 cannot fill <flows> 11"))
        #expect(refusal(SynthConfiguration(flows: 1, elephantShare: 0.8)) == .elephantNeedsFlows(share: 0.8))
        #expect(text(SynthConfiguration(flows: 1, elephantShare: 0.8)).contains("<elephantShare> 0.8 needs <flows> 2 or more"))
        #expect(refusal(SynthConfiguration(packets: 100, flows: 5, elephantShare: 1)) == .elephantLeavesNoPackets(share: 1, otherFlows: 4))
        #expect(text(SynthConfiguration(packets: 100, flows: 5, elephantShare: 1)).contains("leaves no packets for the other 4 flows"))
        #expect(
            refusal(SynthConfiguration(packets: 100, flows: 50, elephantShare: 0.9))
                == .elephantLeavesTooFew(share: 0.9, rest: 10, packets: 100, otherFlows: 49, minimum: 1))
        #expect(text(SynthConfiguration(packets: 100, flows: 50, elephantShare: 0.9)).contains("leaves 10 of <packets> 100 for 49 other flows"))
        #expect(refusal(SynthConfiguration(packets: 10, elephantShare: 0.01)) == .elephantUnderOnePacket(share: 0.01, packets: 10))
        #expect(text(SynthConfiguration(packets: 10, elephantShare: 0.01)).contains("less than one packet"))
        #expect(refusal(SynthConfiguration(packets: 10, packetsPerSecond: 1e-9)) == .timestampsOverflow(packetsPerSecond: 1e-9, packets: 10))
        #expect(text(SynthConfiguration(packets: 10, packetsPerSecond: 1e-9)).contains("raise <packetsPerSecond>"))
        // The library's own text names its properties, never a flag.
        for configuration in [SynthConfiguration(packets: 0), SynthConfiguration(packets: 10, flows: 11), SynthConfiguration(flows: 1, elephantShare: 0.8)] {
            let line = refusal(configuration)?.description ?? ""
            #expect(!line.isEmpty && !line.contains("--"), "\(line)")
        }
        // Edge cases that make sense are accepted.
        #expect(refusal(SynthConfiguration(packets: 10, flows: 1, elephantShare: 1)) == nil)
        #expect(refusal(SynthConfiguration(packets: 10, flows: 10)) == nil)
        #expect(refusal(SynthConfiguration(packets: 10, elephantShare: 0)) == nil)
    }

    @Test("an output path that cannot be written is named, with -o as the fix")
    func unwritable() throws {
        for format in [SynthConfiguration.Format.pcap, .pcapng] {
            let synthesizer = try TraceSynthesizer(configuration: SynthConfiguration(packets: 10, format: format))
            let error = #expect(throws: TrafficError.self) { try synthesizer.write(to: "/nonexistent/dir/t.pcap") }
            guard case .outputUnwritable(let savefile) = error else {
                Issue.record("\(String(describing: error))")
                continue
            }
            #expect(savefile.path == "/nonexistent/dir/t.pcap" && savefile.reason == "No such file or directory", "\(format)")
            #expect(error?.description == "cannot write /nonexistent/dir/t.pcap: No such file or directory (choose a writable path)", "\(format)")
            #expect(
                error?.description(naming: { $0 == .output ? "path with -o" : "--\($0)" })
                    == "cannot write /nonexistent/dir/t.pcap: No such file or directory (choose a writable path with -o)")
        }
    }

    @Test("SequencedFrame reads IPv4 frames as before and synth's IPv6 frames too")
    func sequenceOfBothFamilies() {
        let ipv4 = SequencedFrame(flows: 4, size: 64).bytes(sequence: 123_456)
        #expect(ipv4.withUnsafeBytes { SequencedFrame.sequence(of: $0) } == 123_456)
        var ipv6 = [UInt8](repeating: 0, count: 100)
        ipv6.withUnsafeMutableBufferPointer { TraceFrame.write(flow: 77, ipv6: true, sequence: 987_654_321, size: 100, into: $0.baseAddress!) }
        #expect(ipv6.withUnsafeBytes { SequencedFrame.sequence(of: $0) } == 987_654_321)
        #expect(Self.decode(ipv6)?.flow == 77)
        var foreign = ipv6
        foreign[62] ^= 0xff  // no magic word: not ours
        #expect(foreign.withUnsafeBytes { SequencedFrame.sequence(of: $0) } == nil)
        #expect([UInt8](repeating: 0, count: 40).withUnsafeBytes { SequencedFrame.sequence(of: $0) } == nil)
    }

    @Test("wirecap synth: errors are one line on standard error, the summary one line on standard output")
    func commandLine() throws {
        guard let wirecap = Self.builtTool() else {
            print("SynthTests: the wirecap executable was not built next to the tests (swift build); skipped the command-line checks")
            return
        }
        let path = Self.temporaryPath("cli.pcap")
        defer { unlink(path) }
        let ok = try Self.run(wirecap, ["synth", "-o", path, "--packets", "1000", "--size", "imix", "--elephant-share", "0.8", "--seed", "1"])
        #expect(ok.status == 0 && ok.stderr.isEmpty, "\(ok.stderr)")
        #expect(ok.stdout.hasPrefix("wrote 1000 packets, ") && ok.stdout.contains("elephant (flow 0) 0.8000 of packets"), "\(ok.stdout)")
        #expect(ok.stdout.split(separator: "\n").count == 1)
        for (arguments, phrase) in [
            (["synth"], "give the output file with -o FILE"),
            (["synth", "-o", path, "--packets", "0"], "--packets 0 is out of range"),
            (["synth", "-o", path, "--elephant-share", "2"], "--elephant-share 2 is out of range"),
            (["synth", "-o", path, "--size", "huge"], "--size huge is not a size, imix, or an existing file"),
            (["synth", "-o", "/nonexistent/dir/t.pcap"], "cannot write /nonexistent/dir/t.pcap: No such file or directory (choose a writable path with -o)"),
            (["synth", "-o", path, "--min-flow-packets", "0"], "--min-flow-packets 0 is out of range"),
            (["synth", "-o", path, "--flows", "1", "--elephant-share", "0.8"], "--elephant-share 0.8 needs --flows 2 or more"),
            (["synth", "-o", path, "--packets", "10", "--pps", "1e-9"], "spreads 10 packets over more than a century: raise --pps"),
            (["synth", "-o", path, "--ipv6-share=-1"], "--ipv6-share -1 is out of range"),
        ] {
            let outcome = try Self.run(wirecap, arguments)
            #expect(outcome.status != 0)
            let lines = outcome.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.hasPrefix("wirecap: ") == true && outcome.stderr.contains(phrase), "\(outcome.stderr)")
        }
    }

    // MARK: Running other programs

    static func run(_ executable: String, _ arguments: [String]) throws -> ProgramOutcome { try runProgram(executable, arguments) }

    /// tshark warns on standard error when run as root; that is not about the file.
    static func complaints(_ stderr: String) -> [Substring] {
        stderr.split(separator: "\n").filter { !$0.contains("Running as user \"root\"") }
    }

    static func locate(_ tool: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The `wirecap` that `swift build` / `swift test` put next to this test binary.
    static func builtTool() -> String? {
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" && !directory.path.isEmpty {
            let candidate = directory.appendingPathComponent("wirecap").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}
