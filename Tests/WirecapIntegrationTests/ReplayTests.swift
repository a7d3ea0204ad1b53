import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapSandbox
import WirecapSavefile
import WirecapTraffic

/// Temporary pcap files of numbered frames for replay tests.
enum ReplayTrace {
    /// Writes frames `0..<count` of `frames`, `gapNanoseconds` apart, with `extra` frames written
    /// just before the numbered frame at their index. Returns the path; the caller removes it.
    static func numbered(
        _ frames: SequencedFrame, count: Int, gapNanoseconds: Int = 1000, extra: [Int: [UInt8]] = [:], linkType: Int32 = LinkType.ethernet
    ) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-replay-\(getpid())-\(UUID().uuidString).pcap").path
        let writer = try SavefileWriter(path: path, linkType: linkType, snapLength: 65535)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: frames.size, alignment: 16)
        defer { scratch.deallocate() }
        var clock = 1_700_000_000 * 1_000_000_000
        func stamp() -> (Int, Int) {
            defer { clock += gapNanoseconds }
            return (clock / 1_000_000_000, clock % 1_000_000_000)
        }
        for sequence in 0..<count {
            if let bytes = extra[sequence] {
                let (s, ns) = stamp()
                bytes.withUnsafeBytes { writer.write(bytes: $0, wireLength: bytes.count, seconds: s, nanoseconds: ns) }
            }
            frames.write(sequence: UInt64(sequence), into: scratch)
            let (s, ns) = stamp()
            writer.write(bytes: UnsafeRawBufferPointer(scratch), wireLength: frames.size, seconds: s, nanoseconds: ns)
        }
        try writer.close()
        return path
    }
}

/// The figures of `wirecap replay`'s report on standard output.
struct ReplayOutput {
    var sent = -1
    var bytes = -1
    var seconds = -1.0
    var pps = -1.0
    var refused: [String: Int] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n").map(String.init) {
            let words = line.split(separator: " ").map(String.init)
            if line.hasPrefix("sent "), words.count >= 7 {
                sent = Int(words[1]) ?? -1
                bytes = Int(words[3].dropFirst()) ?? -1
                seconds = Double(words[6]) ?? -1
            } else if line.hasPrefix("rate "), words.count >= 3 {
                pps = Double(words[1]) ?? -1
            } else if line.hasPrefix("refused "), let colon = line.firstIndex(of: ":"), words.count >= 3 {
                refused[String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces), default: 0] += Int(words[1]) ?? 0
            }
        }
    }
}

/// Arrival time of each sequence number and the order they came in, written by the one capture
/// thread of a single-queue engine and read after it stopped.
final class Arrivals: @unchecked Sendable {
    let times: UnsafeMutablePointer<UInt64>
    let count: Int
    var order: [UInt64] = []

    init(count: Int) {
        self.count = count
        times = .allocate(capacity: count)
        times.initialize(repeating: 0, count: count)
        order.reserveCapacity(count)
    }

    deinit { times.deallocate() }

    struct Handler: PacketHandler {
        var ledger: SequenceLedger.Handler
        let arrivals: Arrivals

        mutating func handle(_ packet: Packet) {
            ledger.handle(packet)
            guard let sequence = SequencedFrame.sequence(of: packet.bytes), sequence < UInt64(arrivals.count) else { return }
            arrivals.times[Int(sequence)] = packet.timestampNanoseconds
            arrivals.order.append(sequence)
        }
    }

    var sortedTimes: [UInt64] { (0..<count).map { times[$0] }.filter { $0 > 0 }.sorted() }
}

/// A one-queue capture in the sandbox's receiver namespace that checks sequence numbers and bytes.
struct ReplayCapture {
    let engine: CaptureEngine
    let ledger: SequenceLedger
    let arrivals: Arrivals

    init(_ sandbox: Sandbox, frames: SequencedFrame, expected: Int) throws {
        // Blocks retire by timeout at a paced rate, part full: a long timeout and many blocks let
        // the ring hold the whole run while a debug build's byte-comparing handler catches up.
        let configuration = CaptureConfiguration(
            interface: sandbox.receiverInterface, queues: 1, ring: RingGeometry(blockSize: 1 << 20, blockCount: 96, blockTimeoutMilliseconds: 200))
        let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
        let ledger = SequenceLedger(expected: expected, frames: frames, queues: 1, compareBytes: true)
        let arrivals = Arrivals(count: expected)
        try engine.start { queue in Arrivals.Handler(ledger: ledger.handler(queue: queue), arrivals: arrivals) }
        self.engine = engine
        self.ledger = ledger
        self.arrivals = arrivals
    }

    /// Waits until `packets` were processed (or 20 s), stops, and returns the ledger's verdict.
    func finish(expecting packets: Int) -> SequenceLedger.Verdict {
        let deadline = CWirecapLinux_monotonic_ns() + 20_000_000_000
        while engine.statistics().processed < UInt64(packets) && CWirecapLinux_monotonic_ns() < deadline { usleep(10_000) }
        engine.stop()
        #expect(engine.statistics().captureDrops == 0, "the capture side lost none")
        return ledger.verdict()
    }
}

extension SandboxSuites {
    @Suite("Replay through a veth sandbox")
    struct ReplayTests {
        @Test("200,000 numbered frames replayed at 100,000 pps arrive complete with their bytes, paced within 5 %", .timeLimit(.minutes(3)))
        func pacedAndComplete() throws {
            let total = 200_000
            let rate = 100_000.0
            let frames = SequencedFrame(flows: 256, size: 64)
            // The file's own timing (1 us apart) is overridden by --pps.
            let path = try ReplayTrace.numbered(frames, count: total)
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let capture = try ReplayCapture(sandbox, frames: frames, expected: total)
                let outcome = try Tool.run(["replay", "-i", sandbox.senderInterface, "--pps", "100000", path], in: sandbox.sender)
                let verdict = capture.finish(expecting: total)
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let report = ReplayOutput(outcome.stdout)
                let received = capture.arrivals.sortedTimes
                let receivedRate = received.count > 1 ? Double(received.count - 1) / (Double(received.last! - received.first!) / 1e9) : 0
                let middle = received.isEmpty ? 0 : (received.first! + received.last!) / 2
                let firstHalf = received.filter { $0 < middle }.count
                print("paced replay: \(outcome.stdout.replacingOccurrences(of: "\n", with: "; ")); receiver saw \(Int(receivedRate)) pps, \(firstHalf) in the first half; \(verdict)")
                #expect(report.sent == total)
                #expect(report.bytes == total * frames.size)
                #expect(report.refused.isEmpty, "\(report.refused)")
                #expect(abs(report.pps - rate) / rate < 0.05, "the replay's own report: \(report.pps) pps for \(rate) asked")
                #expect(abs(report.seconds - Double(total - 1) / rate) < 0.05 * Double(total) / rate)
                #expect(verdict.exactlyOnce, "\(verdict)")
                #expect(verdict.captured == total)
                #expect(verdict.foreign == 0)
                #expect(capture.arrivals.order.elementsEqual(0..<UInt64(total)), "one queue, one ring: frames arrive in file order")
                #expect(abs(receivedRate - rate) / rate < 0.05, "as seen by the receiver: \(receivedRate) pps")
                #expect(abs(Double(firstHalf) - Double(total) / 2) < 0.05 * Double(total), "evenly paced: \(firstHalf) of \(total) in the first half")
            }
        }

        @Test("--loop 3 sends every frame of the file three times", .timeLimit(.minutes(1)))
        func loops() throws {
            let count = 10_000
            let frames = SequencedFrame(flows: 16, size: 128)
            let path = try ReplayTrace.numbered(frames, count: count)
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let capture = try ReplayCapture(sandbox, frames: frames, expected: count)
                let outcome = try Tool.run(["replay", "-i", sandbox.senderInterface, "--loop", "3", "--pps", "200000", path], in: sandbox.sender)
                let verdict = capture.finish(expecting: 3 * count)
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let report = ReplayOutput(outcome.stdout)
                #expect(report.sent == 3 * count)
                #expect(report.bytes == 3 * count * frames.size)
                #expect(outcome.stdout.contains("3 times"))
                #expect(verdict.captured == 3 * count, "\(verdict)")
                #expect(verdict.missing == 0 && verdict.altered == 0)
                #expect(verdict.duplicated == 2 * count, "each frame twice more than once")
                #expect(capture.arrivals.order.elementsEqual((0..<3).flatMap { _ in 0..<UInt64(count) }), "the file, three times, in order")
            }
        }

        @Test("a frame over the MTU and a runt are refused and counted by reason; the rest arrive", .timeLimit(.minutes(1)))
        func refusedByReason() throws {
            let count = 1000
            let frames = SequencedFrame(flows: 8, size: 64)
            var overMTU = [UInt8](repeating: 0xab, count: 1600)   // the sandbox's MTU is 1500
            overMTU.replaceSubrange(0..<14, with: [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
            var tagged = [UInt8](repeating: 0xcd, count: 1518)     // 1500 + 14 + a VLAN tag: allowed
            tagged.replaceSubrange(0..<18, with: [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00])
            var untagged = tagged                                    // the same length without a tag: too long
            untagged.replaceSubrange(12..<14, with: [0x08, 0x00])
            let runt: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0]
            let path = try ReplayTrace.numbered(frames, count: count, extra: [10: overMTU, 500: runt, 600: tagged, 700: untagged])
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let capture = try ReplayCapture(sandbox, frames: frames, expected: count)
                let outcome = try Tool.run(["replay", "-i", sandbox.senderInterface, "--topspeed", path], in: sandbox.sender)
                let verdict = capture.finish(expecting: count + 1)
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let report = ReplayOutput(outcome.stdout)
                print("refusals: \(outcome.stdout.replacingOccurrences(of: "\n", with: "; "))")
                #expect(report.sent == count + 1, "the numbered frames and the tagged 1518-byte one")
                #expect(report.refused.count == 2, "\(report.refused)")
                #expect(report.refused.first { $0.key.hasPrefix("over the MTU") }?.value == 2, "\(report.refused)")
                #expect(report.refused.first { $0.key.hasPrefix("runt") }?.value == 1, "\(report.refused)")
                #expect(verdict.exactlyOnce && verdict.captured == count, "\(verdict)")
                #expect(verdict.foreign == 1, "the VLAN-tagged frame is not a numbered one")
            }
        }

        @Test("frames the kernel refuses (TP_STATUS_WRONG_FORMAT) are counted, and the frames behind them still go, in order", arguments: [0, TxRing.defaultCopyLimit])
        func kernelRefusals(copyLimit: Int) throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            try Sandbox.with { sandbox in
                let capture = try ReplayCapture(sandbox, frames: frames, expected: 8)
                let ring = try sandbox.sender.run { try TxRing(interface: sandbox.senderInterface, frames: 64, copyLimit: copyLimit) }
                // Put straight into the ring, past the checks a replay makes, so that the kernel decides.
                var tooLong = [UInt8](repeating: 0xee, count: ring.mtu + 18)   // fits a slot; over the MTU untagged
                tooLong.replaceSubrange(0..<14, with: [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
                let runt: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0]
                var plan: [[UInt8]] = [frames.bytes(sequence: 0), runt, frames.bytes(sequence: 1), frames.bytes(sequence: 2), runt, runt, frames.bytes(sequence: 3)]
                if copyLimit == 0 { plan.insert(tooLong, at: 2) }   // with virtio-net headers the kernel leaves the MTU to us
                for bytes in plan { bytes.withUnsafeBytes { ring.put($0) } }
                for sequence in 4..<8 { frames.bytes(sequence: UInt64(sequence)).withUnsafeBytes { ring.put($0) } }
                try ring.kick()
                try ring.finish(stallNanoseconds: 2_000_000_000)
                let verdict = capture.finish(expecting: 8)
                #expect(ring.sent == 8)
                #expect(ring.bytes == 8 * 64)
                #expect(ring.refused[.runt] == 3, "\(ring.refused)")
                #expect(ring.refused[.overMTU] == (copyLimit == 0 ? 1 : nil), "\(ring.refused)")
                #expect(ring.inFlight == 0)
                #expect(verdict.exactlyOnce && verdict.captured == 8, "\(verdict)")
                #expect(capture.arrivals.order == (0..<8).map { UInt64($0) })
            }
        }

        @Test("the file's own timing, and --multiplier", .timeLimit(.minutes(1)))
        func fileTiming() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            // 500 frames 2 ms apart: the file spans 0.998 s.
            let path = try ReplayTrace.numbered(frames, count: 500, gapNanoseconds: 2_000_000)
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let asRecorded = try Tool.run(["replay", "-i", sandbox.senderInterface, path], in: sandbox.sender)
                let faster = try Tool.run(["replay", "-i", sandbox.senderInterface, "--multiplier", "4", path], in: sandbox.sender)
                #expect(asRecorded.status == 0 && faster.status == 0, "\(asRecorded.stderr) \(faster.stderr)")
                let a = ReplayOutput(asRecorded.stdout)
                let b = ReplayOutput(faster.stdout)
                #expect(a.sent == 500 && b.sent == 500)
                #expect(abs(a.seconds - 0.998) < 0.05, "as recorded: \(a.seconds) s")
                #expect(abs(b.seconds - 0.998 / 4) < 0.0125 + 0.005, "four times faster: \(b.seconds) s")
            }
        }

        @Test("--burst 250 --gap 100 sends four bursts with three pauses of 100 ms", .timeLimit(.minutes(1)))
        func bursts() throws {
            let count = 1000
            let frames = SequencedFrame(flows: 4, size: 64)
            let path = try ReplayTrace.numbered(frames, count: count)
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let capture = try ReplayCapture(sandbox, frames: frames, expected: count)
                let outcome = try Tool.run(["replay", "-i", sandbox.senderInterface, "--burst", "250", "--gap", "100", path], in: sandbox.sender)
                let verdict = capture.finish(expecting: count)
                #expect(outcome.status == 0, "\(outcome.stderr)")
                let report = ReplayOutput(outcome.stdout)
                #expect(report.sent == count)
                #expect(report.seconds >= 0.3 && report.seconds < 0.4 + 0.1, "\(report.seconds) s")
                #expect(verdict.exactlyOnce, "\(verdict)")
                let times = capture.arrivals.sortedTimes
                let pauses = zip(times, times.dropFirst()).filter { $1 - $0 > 50_000_000 }.map { Double($1 - $0) / 1e6 }
                #expect(pauses.count == 3, "pauses (ms): \(pauses)")
                #expect(pauses.allSatisfy { $0 >= 99 && $0 < 150 }, "pauses (ms): \(pauses)")
            }
        }

        @Test("an interface that is down, one without a link, and missing privilege: one-line errors")
        func interfaceErrors() throws {
            let path = try ReplayTrace.numbered(SequencedFrame(flows: 1, size: 64), count: 10)
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                let tx = sandbox.senderInterface
                expectOneLineError(
                    try Tool.run(["replay", "-i", tx, path], in: sandbox.sender, unprivileged: true), containing: [tx, "CAP_NET_RAW", "run as root"])
                try Command.run(["ip", "-n", sandbox.receiver.name, "link", "set", sandbox.receiverInterface, "down"])
                // The kernel updates the operational state (IFF_RUNNING) asynchronously, within about a second.
                for _ in 0..<100 where !(try Command.run(["ip", "-n", sandbox.sender.name, "link", "show", tx])).contains("NO-CARRIER") { usleep(50_000) }
                expectOneLineError(try Tool.run(["replay", "-i", tx, path], in: sandbox.sender), containing: [tx, "no link", "ip link show \(tx)"])
                try Command.run(["ip", "-n", sandbox.sender.name, "link", "set", tx, "down"])
                expectOneLineError(try Tool.run(["replay", "-i", tx, path], in: sandbox.sender), containing: [tx, "interface is down", "ip link set \(tx) up"])
            }
        }
    }
}


/// Errors `wirecap replay` reports before it opens a socket: no root needed.
@Suite("wirecap replay: option and file errors")
struct ReplayErrorTests {
    @Test("nonsense numbers and conflicting options")
    func options() throws {
        let file = "/nonexistent/never-read.pcap"   // options are checked before the file
        let cases: [([String], [String])] = [
            (["--loop", "0"], ["--loop 0 is out of range", "1 or more"]),
            (["--pps=-5"], ["--pps -5", "positive rate"]),
            (["--pps", "0"], ["--pps 0", "positive rate"]),
            (["--multiplier", "0"], ["--multiplier 0", "positive factor"]),
            (["--pps", "1000", "--topspeed"], ["--pps and --topspeed cannot be combined", "choose one"]),
            (["--pps", "1000", "--multiplier", "2"], ["--pps and --multiplier cannot be combined"]),
            (["--burst", "10"], ["--burst needs --gap"]),
            (["--gap", "10"], ["--gap needs --burst"]),
            (["--burst", "0", "--gap", "10"], ["--burst 0 is out of range"]),
            (["--burst", "10", "--gap=-1"], ["--gap -1", "positive number of milliseconds"]),
            (["--burst", "10", "--gap", "5", "--pps", "100"], ["--burst", "cannot be combined with --pps"]),
        ]
        for (arguments, phrases) in cases {
            expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0"] + arguments + [file]), containing: phrases)
        }
    }

    @Test("a missing, truncated, foreign, non-Ethernet or empty file")
    func files() throws {
        expectOneLineError(
            try Tool.run(["replay", "-i", "wcnosuch0", "/nonexistent/x.pcap"]), containing: ["/nonexistent/x.pcap", "No such file", "readable pcap"])

        let good = try ReplayTrace.numbered(SequencedFrame(flows: 1, size: 64), count: 10)
        defer { unlink(good) }
        let data = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = good + ".truncated"
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: truncated))
        defer { unlink(truncated) }
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", truncated]), containing: [truncated, "truncated"])

        let text = good + ".txt"
        try Data("not a capture\n".utf8).write(to: URL(fileURLWithPath: text))
        defer { unlink(text) }
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", text]), containing: [text, "unknown file format"])

        let cooked = try ReplayTrace.numbered(SequencedFrame(flows: 1, size: 64), count: 3, linkType: 113)   // Linux cooked capture
        defer { unlink(cooked) }
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", cooked]), containing: [cooked, "LINUX_SLL (113)", "not Ethernet"])

        let empty = try ReplayTrace.numbered(SequencedFrame(flows: 1, size: 64), count: 0)
        defer { unlink(empty) }
        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", empty]), containing: [empty, "no packets"])

        expectOneLineError(try Tool.run(["replay", "-i", "wcnosuch0", good]), containing: ["wcnosuch0", "no such interface", "ip link"])
    }
}
