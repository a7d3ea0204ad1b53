#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WirecapEngine
import WirecapForward
import WirecapSandbox
import WirecapTestSupport

extension SandboxSuites {
    /// What a verdict can do to a frame besides forwarding it: push or pop a VLAN tag, send it
    /// to another output. The sink side is read by tcpdump, a peer that shares no code with the
    /// forwarder, byte for byte (`-xx`).
    @Suite("Forwarder verdicts, checked with tcpdump -xx at the sink")
    struct ForwardVerdictTests {
        @Test("push a VLAN tag and rewrite the destination MAC: tcpdump at the sink sees exactly those bytes", .timeLimit(.minutes(1)))
        func pushTag() throws {
            let total = 3_000
            let frames = SequencedFrame(flows: 8, size: 64)
            let originals = (0..<UInt64(total)).map { frames.bytes(sequence: $0) }
            let seen = try Self.forwardWithTcpdump(total: total, frames: originals, arriving: total) { _ in PushTag() }
            Self.expectSame(seen, Dictionary(uniqueKeysWithValues: originals.enumerated().map { (UInt64($0.offset), PushTag.expected($0.element)) }), frames: frames)
        }

        @Test("pop the VLAN tag of tagged frames and drop every fourth: tcpdump at the sink sees the untagged rest", .timeLimit(.minutes(1)))
        func popTag() throws {
            let total = 3_000
            let frames = SequencedFrame(flows: 8, size: 64)
            let plain = (0..<UInt64(total)).map { frames.bytes(sequence: $0) }
            // Tagged on the way in (VLAN 200); what the sink should see: untagged, every fourth gone.
            let tagged = plain.map { Array($0[0..<12]) + [0x81, 0x00, 0x00, 0xc8] + $0[12...] }
            let expected = Dictionary(uniqueKeysWithValues: plain.enumerated().filter { $0.offset % 4 != 3 }.map { (UInt64($0.offset), $0.element) })
            let seen = try Self.forwardWithTcpdump(total: total, frames: tagged, arriving: expected.count) { _ in PopTag() }
            Self.expectSame(seen, expected, frames: frames)
        }

        @Test("send to another output: odd frames leave on the second output, even ones on the main; a missing output counts as a TX error", .timeLimit(.minutes(1)))
        func secondOutput() throws {
            let total = 40_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2, additionalOutputs: 1) { sandbox in
                let second = sandbox.additionalOutputs[0]
                let (sinks, records) = try sandbox.startSinks([sandbox.sinkInterface, second.sink], expecting: total, frames: frames)
                let capture = CaptureConfiguration(
                    interface: sandbox.inputInterface, queues: 2, ring: ForwardingTests.smallBlocks(256), snapLength: 2048,
                    pool: PoolConfiguration(chunks: 256))
                let forwarder = try sandbox.forwarder.run {
                    try Forwarder(
                        configuration: ForwarderConfiguration(capture: capture, output: sandbox.outputInterface, additionalOutputs: [second.output]))
                }
                try forwarder.start { _ in SplitByParity() }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: total, prebuilt: true)
                let nowhere = (0..<total).filter { $0 % 10 == 9 }.count
                forwarder.stop(afterReceiving: total)
                let s = forwarder.statistics()
                for _ in 0..<100 where sinks.reduce(0, { $0 + $1.statistics().processed }) < s.forwarded { usleep(20_000) }
                for sink in sinks { sink.stop() }
                let main = records[0].tally { $0 % 2 == 0 && $0 % 10 != 9 }
                let other = records[1].tally { $0 % 2 == 1 && $0 % 10 != 9 }
                print("second output: main \(records[0].matched), second \(records[1].matched), TX errors \(s.txErrors), forwarded \(s.forwarded)")
                #expect(main.missing == 0 && main.unexpected == 0 && main.duplicated == 0 && records[0].altered == 0)
                #expect(other.missing == 0 && other.unexpected == 0 && other.duplicated == 0 && records[1].altered == 0)
                #expect(s.txErrors == UInt64(nowhere) && s.forwarded == UInt64(total - nowhere))
                #expect(s.isConservedPerQueue && s.inFlight == 0)
            }
        }

        @Test("a tap file: every frame sent, as sent (tag pushed in), in order per flow; tcpdump reads it", .timeLimit(.minutes(1)))
        func tapFile() throws {
            let total = 20_000
            let frames = SequencedFrame(flows: 16, size: 64)
            let path = temporaryPath("fwd", "tap.pcap")
            defer { unlink(path) }
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let capture = CaptureConfiguration(
                    interface: sandbox.inputInterface, queues: 2, ring: ForwardingTests.smallBlocks(256), snapLength: 2048,
                    pool: PoolConfiguration(chunks: 256))
                var configuration = ForwarderConfiguration(capture: capture, output: sandbox.outputInterface)
                configuration.tapFile = path
                let forwarder = try sandbox.forwarder.run { try Forwarder(configuration: configuration) }
                try forwarder.start { _ in PushTag() }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: total, prebuilt: true)
                forwarder.stop(afterReceiving: total)
                let s = forwarder.statistics()
                #expect(s.forwarded == UInt64(total) && s.tapCopies == UInt64(total) && forwarder.tapFileFailure == nil)
            }
            let seen = Self.frames(fromHexDump: try Command.run([try Command.locate("tcpdump"), "-r", path, "-nn", "-xx"]))
            let expected = Dictionary(uniqueKeysWithValues: (0..<UInt64(total)).map { ($0, PushTag.expected(frames.bytes(sequence: $0))) })
            Self.expectSame(seen, expected, frames: frames)
        }

        /// Runs a forwarder with `makeHandler` over 2 queues, sends `frames` in order from the
        /// sender, and returns what tcpdump, capturing at the sink, wrote: each frame's bytes, as
        /// `tcpdump -xx` prints them, in arrival order.
        static func forwardWithTcpdump<H: VerdictHandler>(
            total: Int, frames: [[UInt8]], arriving: Int, _ makeHandler: @escaping @Sendable (Int) -> H
        ) throws -> [[UInt8]] {
            let tcpdump = try Command.locate("tcpdump")
            let path = temporaryPath("fwd", "sink.pcap")
            defer { unlink(path) }
            return try ForwardingSandbox.with(queues: 2) { sandbox in
                // -Z root: tcpdump would otherwise drop to its own user, who may not write here.
                let sink = try BackgroundCapture(
                    ["-i", sandbox.sinkInterface, "-nn", "-s", "0", "-B", "16384", "-c", String(arriving), "-Z", "root", "-w", path], in: sandbox.sink, command: [tcpdump])
                try sink.waitUntilListening()
                let capture = CaptureConfiguration(
                    interface: sandbox.inputInterface, queues: 2, ring: ForwardingTests.smallBlocks(64), snapLength: 2048,
                    pool: PoolConfiguration(chunks: 64))
                let forwarder = try sandbox.forwarder.run {
                    try Forwarder(configuration: ForwarderConfiguration(capture: capture, output: sandbox.outputInterface))
                }
                try forwarder.start(makeHandler)
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                for frame in frames { _ = frame.withUnsafeBytes { sender.send($0) } }
                forwarder.stop(afterReceiving: total)
                let s = forwarder.statistics()
                // tcpdump ends by itself once it has `arriving` frames (a SIGINT would leave what
                // its ring still holds unread); if some never come, it is stopped after 10 s.
                for _ in 0..<500 where sink.process.isRunning { usleep(20_000) }
                if sink.process.isRunning { _ = sink.interrupt() }
                print("forwarder: received \(s.received), forwarded \(s.forwarded), verdict drops \(s.verdictDrops), capture drops \(s.captureDrops); tcpdump: \(sink.stderr.split(separator: "\n").suffix(3).joined(separator: "; "))")
                let text = try Command.run([tcpdump, "-r", path, "-nn", "-xx"])
                return Self.frames(fromHexDump: text)
            }
        }

        /// The frames of a `tcpdump -xx` listing: each packet's summary line, then lines
        /// `\t0x0010:  0800 4500 ...` of hex words.
        static func frames(fromHexDump text: String) -> [[UInt8]] {
            var frames: [[UInt8]] = []
            for line in text.split(separator: "\n") {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                guard trimmed.hasPrefix("0x"), let colon = trimmed.firstIndex(of: ":") else {
                    // A packet's summary (and, as Command.run merges it in, tcpdump's "reading from
                    // file" line): a new frame starts.
                    frames.append([])
                    continue
                }
                for word in trimmed[trimmed.index(after: colon)...].split(separator: " ") {
                    var digits = Substring(word)
                    while digits.count >= 2 {
                        frames[frames.count - 1].append(UInt8(digits.prefix(2), radix: 16)!)
                        digits = digits.dropFirst(2)
                    }
                }
            }
            return frames.filter { !$0.isEmpty }
        }

        /// Every frame tcpdump saw is the expected one for its sequence number, each expected one
        /// came once, and each flow's frames came in order.
        static func expectSame(
            _ seen: [[UInt8]], _ expected: [UInt64: [UInt8]], frames: SequencedFrame, sourceLocation: SourceLocation = #_sourceLocation
        ) {
            var arrived = Set<UInt64>()
            var lastOfFlow = [Int: UInt64]()
            var wrong: [String] = []
            var reordered = 0
            for bytes in seen {
                let tagged = bytes.count >= 18 && bytes[12] == 0x81 && bytes[13] == 0x00
                let untagged = tagged ? Array(bytes[0..<12] + bytes[16...]) : bytes
                guard let sequence = untagged.withUnsafeBytes({ SequencedFrame.sequence(of: $0) }), let want = expected[sequence] else {
                    wrong.append("unexpected \(hex(bytes))")
                    continue
                }
                if want != bytes { wrong.append("frame \(sequence): \(hex(bytes)) != \(hex(want))") }
                if !arrived.insert(sequence).inserted { wrong.append("frame \(sequence) twice") }
                let flow = frames.flow(of: sequence)
                if let last = lastOfFlow[flow], last > sequence { reordered += 1 }
                lastOfFlow[flow] = sequence
            }
            #expect(arrived.count == expected.count, "tcpdump saw \(arrived.count) of \(expected.count) frames", sourceLocation: sourceLocation)
            #expect(wrong.isEmpty, "\(wrong.count) wrong, first: \(wrong.first ?? "")", sourceLocation: sourceLocation)
            #expect(reordered == 0, sourceLocation: sourceLocation)
        }

        static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    }
}

/// Pops the VLAN tag every frame carries; drops every fourth frame (by sequence number).
struct PopTag: VerdictHandler {
    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        guard frame.popVLAN() != nil else { return .drop }
        guard let sequence = SequencedFrame.sequence(of: UnsafeRawBufferPointer(frame.bytes)) else { return .drop }
        return sequence % 4 == 3 ? .drop : .forward
    }
}

/// Even frames to the main output, odd ones to output 1; those ending in 9 to output 7, which
/// does not exist.
struct SplitByParity: VerdictHandler {
    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        guard let sequence = SequencedFrame.sequence(of: UnsafeRawBufferPointer(frame.bytes)) else { return .drop }
        if sequence % 10 == 9 { return .send(to: 7) }
        return sequence % 2 == 0 ? .forward : .send(to: 1)
    }
}

extension Forwarder {
    /// Waits (up to 5 s) until `total` frames were received and none is in flight, then stops.
    func stop(afterReceiving total: Int) {
        for _ in 0..<250 {
            let s = statistics()
            if s.received == UInt64(total) && s.inFlight == 0 { break }
            usleep(20_000)
        }
        stop()
    }
}

extension ForwardingSandbox {
    /// A capture (rings of 512 blocks of 64 KiB) on each of `interfaces` in the sink's namespace,
    /// each recording the numbered frames it sees.
    func startSinks(_ interfaces: [String], expecting total: Int, frames: SequencedFrame) throws -> ([CaptureEngine], [SinkRecord]) {
        let sinks = try interfaces.map { name in
            try sink.run { try CaptureEngine(configuration: CaptureConfiguration(interface: name, ring: ForwardingTests.smallBlocks(512), snapLength: 2048)) }
        }
        let records = interfaces.map { _ in SinkRecord(expected: total, frames: frames, rewrite: nil) }
        for (sink, record) in zip(sinks, records) { try sink.start { _ in record.handler() } }
        return (sinks, records)
    }
}
