#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WirecapEngine
import WirecapIDS
import WirecapSandbox

extension SandboxSuites {
    /// The `wirecap-fwd` executable as a user runs it, in a three-namespace sandbox.
    @Suite("wirecap-fwd command")
    struct ForwardCommandTests {
        static func fwd(_ arguments: [String], in namespace: NetworkNamespace? = nil, unprivileged: Bool = false) throws -> Tool.Outcome {
            try Tool.run(arguments, in: namespace, unprivileged: unprivileged, executable: Tool.forwarder)
        }

        @Test("bad input: one line naming the thing and the fix, a non-zero exit", .timeLimit(.minutes(1)))
        func badInput() throws {
            try ForwardingSandbox.with(outputMTU: 1_400) { sandbox in
                let ns = sandbox.forwarder
                let (input, output) = (sandbox.inputInterface, sandbox.outputInterface)
                expectOneLineError(try Self.fwd(["-i", input], in: ns), containing: ["-o"], program: "wirecap-fwd")
                expectOneLineError(try Self.fwd(["-i", input, "-o", input], in: ns), containing: [input, "itself", "another output"], program: "wirecap-fwd")
                expectOneLineError(try Self.fwd(["-i", "wcnosuch0", "-o", output], in: ns), containing: ["wcnosuch0", "no such interface"], program: "wirecap-fwd")
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output], in: ns), containing: [output, "MTU 1400", "ip link set \(output) mtu 1500"],
                    program: "wirecap-fwd")
                try ns.exec(["ip", "link", "set", output, "mtu", "1500"])
                try ns.exec(["ip", "link", "set", output, "down"])
                expectOneLineError(try Self.fwd(["-i", input, "-o", output], in: ns), containing: [output, "down", "ip link set \(output) up"], program: "wirecap-fwd")
                try ns.exec(["ip", "link", "set", output, "up"])
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output], in: ns, unprivileged: true), containing: ["CAP_NET_RAW", "root"], program: "wirecap-fwd")
                expectOneLineError(try Self.fwd(["-i", input, "-o", output, "--queues", "0"], in: ns), containing: ["--queues"], program: "wirecap-fwd")
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output, "--drop-signature", "hex:zz"], in: ns), containing: ["--drop-signature hex:zz", "hex:deadbeef"],
                    program: "wirecap-fwd")
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output, "udp", "prot", "53"], in: ns), containing: ["bad filter expression 'udp prot 53'", "man pcap-filter"],
                    program: "wirecap-fwd")
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output, "--duration", "inf"], in: ns), containing: ["--duration inf", "out of range", "leave --duration out"],
                    program: "wirecap-fwd")
                expectOneLineError(
                    try Self.fwd(["-i", input, "-o", output, "--tap", "/tmp/wirecap-tap.pcap", "--bidirectional"], in: ns),
                    containing: ["--tap /tmp/wirecap-tap.pcap", "--bidirectional"], program: "wirecap-fwd")
                // The same command under wirecap: its own name in front.
                expectOneLineError(try Tool.run(["fwd", "-i", input, "-o", input], in: ns), containing: ["itself"])
            }
        }

        /// What one run of the command delivered to the sink.
        struct Delivery {
            var status: Int32
            var stderr: String
            var sink: SinkRecord
            var missing: Int
            var unexpected: Int
            var duplicated: Int
            /// How many of the frames sent should arrive.
            var wanted: Int
        }

        /// Runs `wirecap-fwd -i IN -o OUT` with `options` in `sandbox`, sends `total` numbered
        /// frames from the sender, waits until the sink has the `wanted` ones `isForwarded` selects
        /// (10 s at most), stops the command with SIGINT and tallies the sink.
        static func deliver(
            _ options: [String], in sandbox: ForwardingSandbox, total: Int, frames: SequencedFrame, isForwarded: (UInt64) -> Bool
        ) throws -> Delivery {
            let sink = try sandbox.sink.run {
                try CaptureEngine(configuration: CaptureConfiguration(interface: sandbox.sinkInterface, ring: ForwardingTests.smallBlocks(1024), snapLength: 2048))
            }
            let record = SinkRecord(expected: total, frames: frames, rewrite: nil)
            try sink.start { _ in record.handler() }
            let forwarder = try BackgroundCapture(
                ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "-s", "2048", "--block-size", "65536", "--blocks", "512"] + options,
                in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding")
            try forwarder.waitUntilListening()
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            _ = sender.sendSequenced(frames, count: total, prebuilt: true)
            let wanted = (0..<UInt64(total)).filter(isForwarded).count
            for _ in 0..<500 where sink.statistics().processed < UInt64(wanted) { usleep(20_000) }
            let status = forwarder.interrupt()
            sink.stop()
            let (missing, unexpected, duplicated) = record.tally(isForwarded: isForwarded)
            return Delivery(
                status: status, stderr: forwarder.stderr, sink: record, missing: missing, unexpected: unexpected, duplicated: duplicated, wanted: wanted)
        }

        @Test("as an IPS (--drop-signature): the sink sees exactly the frames without the signature", .timeLimit(.minutes(1)))
        func intrusionPrevention() throws {
            let total = 20_000
            let frames = SequencedFrame(flows: 16, size: 64)
            // 198.18.0.3, the source address of flow 3: a sixteenth of the frames.
            let signature = try Signature(parsing: "hex:c6120003")
            let carries = (0..<UInt64(total)).map { sequence in frames.bytes(sequence: sequence).withUnsafeBytes { signature.occurs(in: $0) } }
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let run = try Self.deliver(
                    ["--queues", "2", "--drop-signature", "hex:c6120003"], in: sandbox, total: total, frames: frames, isForwarded: { !carries[Int($0)] })
                let dropped = total - run.wanted
                print("wirecap-fwd as an IPS: \(dropped) of \(total) frames carry the signature; sink \(run.sink.matched), missing \(run.missing), unexpected \(run.unexpected)\n\(run.stderr)")
                #expect(run.status == 0)
                #expect(dropped > 0 && dropped < total)
                #expect(run.missing == 0 && run.unexpected == 0 && run.duplicated == 0 && run.sink.altered == 0 && run.sink.matched == run.wanted)
                #expect(run.stderr.contains("\(run.wanted) frames forwarded, \(total) received, \(dropped) dropped by verdict"), "\(run.stderr)")
            }
        }

        @Test("a filter expression: only matching frames are captured, so only they reach the sink", .timeLimit(.minutes(1)))
        func filterExpression() throws {
            let total = 16_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                // 198.18.0.3 is the source of flow 3 only.
                let run = try Self.deliver(
                    ["--queues", "2", "src", "host", "198.18.0.3"], in: sandbox, total: total, frames: frames, isForwarded: { frames.flow(of: $0) == 3 })
                print("wirecap-fwd with a filter: \(run.wanted) of \(total) frames match; sink \(run.sink.matched), missing \(run.missing), unexpected \(run.unexpected)\n\(run.stderr)")
                #expect(run.status == 0)
                #expect(run.wanted == total / 16)
                #expect(run.missing == 0 && run.unexpected == 0 && run.duplicated == 0 && run.sink.altered == 0 && run.sink.matched == run.wanted)
                // Frames the filter rejects are never captured: not received, not dropped by verdict.
                #expect(run.stderr.contains("\(run.wanted) frames forwarded, \(run.wanted) received, 0 dropped by verdict"), "\(run.stderr)")
            }
        }

        /// Frames OUT's qdisc has sent, from `tc -s qdisc show`.
        static func qdiscPackets(_ sandbox: ForwardingSandbox) throws -> Int {
            let text = try sandbox.forwarder.exec(["tc", "-s", "qdisc", "show", "dev", sandbox.outputInterface])
            let words = text.split(whereSeparator: \.isWhitespace)
            // "Sent 1234 bytes 56 pkt (dropped 0, ..."
            guard let sent = words.firstIndex(of: "Sent"), sent + 4 < words.count, words[sent + 4] == "pkt", let packets = Int(words[sent + 3])
            else { throw Command.Failure(command: ["tc", "-s", "qdisc", "show"], status: 0, output: "no packet count in: \(text)") }
            return packets
        }

        @Test("--keep-qdisc: frames go through OUT's qdisc (tc counts them) and all reach the sink; by default they bypass it", .timeLimit(.minutes(1)))
        func keepQdisc() throws {
            let total = 5_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with { sandbox in
                // A qdisc that counts what passes it (veth has none by default).
                _ = try sandbox.forwarder.exec(["tc", "qdisc", "replace", "dev", sandbox.outputInterface, "root", "pfifo", "limit", "100000"])
                let before = try Self.qdiscPackets(sandbox)
                let bypassed = try Self.deliver([], in: sandbox, total: total, frames: frames, isForwarded: { _ in true })
                let afterBypass = try Self.qdiscPackets(sandbox)
                let kept = try Self.deliver(["--keep-qdisc"], in: sandbox, total: total, frames: frames, isForwarded: { _ in true })
                let afterKept = try Self.qdiscPackets(sandbox)
                print("wirecap-fwd --keep-qdisc: qdisc sent \(before) -> \(afterBypass) (default) -> \(afterKept) (--keep-qdisc); sink \(bypassed.sink.matched) and \(kept.sink.matched) of \(total)\n\(kept.stderr)")
                for run in [bypassed, kept] {
                    #expect(run.status == 0, "\(run.stderr)")
                    #expect(run.missing == 0 && run.duplicated == 0 && run.sink.altered == 0 && run.sink.matched == total, "\(run.stderr)")
                }
                #expect(afterBypass - before < total, "the default bypasses the qdisc")
                #expect(afterKept - afterBypass >= total, "--keep-qdisc sends every frame through it")
            }
        }

        @Test("--bidirectional: frames from either side reach the other, once, with no loop; a summary and JSON per direction", .timeLimit(.minutes(1)))
        func bidirectional() throws {
            let total = 10_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with { sandbox in
                let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-fwd-both-\(getpid()).json").path
                defer { unlink(json) }
                let (input, output) = (sandbox.inputInterface, sandbox.outputInterface)
                let configuration = { (interface: String) in
                    CaptureConfiguration(interface: interface, ring: ForwardingTests.smallBlocks(1024), snapLength: 2048)
                }
                // A capture at each end: what the sender side sends arrives at the sink, and back.
                let sink = try sandbox.sink.run { try CaptureEngine(configuration: configuration(sandbox.sinkInterface)) }
                let back = try sandbox.sender.run { try CaptureEngine(configuration: configuration(sandbox.senderInterface)) }
                let atSink = SequenceLedger(expected: total, frames: frames, queues: 1, compareBytes: true)
                let atSender = SequenceLedger(expected: total, frames: frames, queues: 1, compareBytes: true)
                try sink.start { atSink.handler(queue: $0) }
                try back.start { atSender.handler(queue: $0) }
                // The qdisc kept: then what one direction sends out of an interface is also seen by
                // the other direction's capture there, and would loop if it were forwarded.
                let forwarder = try BackgroundCapture(
                    ["-i", input, "-o", output, "--bidirectional", "--keep-qdisc", "-s", "2048", "--block-size", "65536", "--blocks", "512", "--stats-json", json],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding \(input) -> \(output) and \(output) -> \(input): 1 queues each")
                try forwarder.waitUntilListening()
                let fromSender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let fromSink = try sandbox.sink.run { try FrameSender(interface: sandbox.sinkInterface) }
                _ = fromSender.sendSequenced(frames, count: total, prebuilt: true)
                _ = fromSink.sendSequenced(frames, count: total, prebuilt: true)
                for _ in 0..<250 where sink.statistics().processed < UInt64(total) || back.statistics().processed < UInt64(total) { usleep(20_000) }
                // Time for a loop to show, if there were one.
                usleep(200_000)
                let status = forwarder.interrupt()
                sink.stop()
                back.stop()
                let (there, returned) = (atSink.verdict(), atSender.verdict())
                print("wirecap-fwd --bidirectional: at the sink \(there); back at the sender \(returned)\n\(forwarder.stderr)")
                #expect(status == 0, "\(forwarder.stderr)")
                #expect(there.exactlyOnce && there.captured == total && there.foreign == 0, "\(there)")
                #expect(returned.exactlyOnce && returned.captured == total && returned.foreign == 0, "\(returned)")
                #expect(forwarder.stderr.contains("\(input) -> \(output): \(total) frames forwarded, \(total) received"), "\(forwarder.stderr)")
                #expect(forwarder.stderr.contains("\(output) -> \(input): \(total) frames forwarded, \(total) received"), "\(forwarder.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
                let reverse = object?["reverse"] as? [String: Any]
                #expect(object?["input"] as? String == input && reverse?["input"] as? String == output && reverse?["output"] as? String == input)
                #expect((object?["total"] as? [String: Any])?["forwarded"] as? Int == total)
                #expect((reverse?["total"] as? [String: Any])?["forwarded"] as? Int == total)
                #expect(object?["conserved"] as? Bool == true && reverse?["conserved"] as? Bool == true)
                // The same fanout id would join both interfaces' sockets into one group. One queue a
                // direction joins no group at all (0); several ask the kernel for a unique id each.
                let groups = [object?["fanout_group"] as? Int, reverse?["fanout_group"] as? Int]
                #expect(groups == [0, 0], "\(groups)")
            }
        }

        @Test("--priority-high: every thread of wirecap-fwd runs SCHED_FIFO and forwards; without the privilege, one line", .timeLimit(.minutes(1)))
        func priorityHigh() throws {
            let total = 5_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                expectOneLineError(
                    try Self.fwd(["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--priority-high"], in: sandbox.forwarder, unprivileged: true),
                    containing: ["--priority-high", "SCHED_FIFO", "CAP_SYS_NICE"], program: "wirecap-fwd")
                let (sinks, records) = try sandbox.startSinks([sandbox.sinkInterface], expecting: total, frames: frames)
                let forwarder = try BackgroundCapture(
                    ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--queues", "2", "-s", "2048", "--block-size", "65536", "--priority-high"],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding")
                try forwarder.waitUntilListening()
                // `ip netns exec` execs the tool, so the process is wirecap-fwd itself. Field 41 of
                // a task's stat is its policy: 1, SCHED_FIFO.
                let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(forwarder.process.processIdentifier)/task")
                let policies = tasks.compactMap { task -> Int? in
                    guard let stat = try? String(contentsOfFile: "/proc/\(forwarder.process.processIdentifier)/task/\(task)/stat", encoding: .utf8),
                        let close = stat.lastIndex(of: ")")
                    else { return nil }
                    let fields = stat[stat.index(after: close)...].split(separator: " ")
                    return fields.count > 38 ? Int(fields[38]) : nil
                }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: total, prebuilt: true)
                for _ in 0..<100 where sinks[0].statistics().processed < UInt64(total) { usleep(20_000) }
                let status = forwarder.interrupt()
                sinks[0].stop()
                let (missing, _, duplicated) = records[0].tally { _ in true }
                print("wirecap-fwd --priority-high: \(tasks.count) threads, policies \(policies); sink \(records[0].matched)")
                #expect(tasks.count >= 5, "main, 2 capture and 2 forwarding threads at least")
                #expect(policies.count == tasks.count && policies.allSatisfy { $0 == 1 }, "\(policies)")
                #expect(status == 0 && missing == 0 && duplicated == 0)
            }
        }

        @Test("--tap: a copy of every forwarded frame leaves on the tap too; the sink and the tap each see every frame once", .timeLimit(.minutes(1)))
        func tap() throws {
            let total = 20_000
            let frames = SequencedFrame(flows: 16, size: 64)
            try ForwardingSandbox.with(queues: 2, additionalOutputs: 1) { sandbox in
                let tap = sandbox.additionalOutputs[0]
                let (sinks, records) = try sandbox.startSinks([sandbox.sinkInterface, tap.sink], expecting: total, frames: frames)
                let forwarder = try BackgroundCapture(
                    ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--tap", tap.output, "--queues", "2", "-s", "2048", "--block-size", "65536",
                     "--blocks", "512"],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding")
                try forwarder.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: total, prebuilt: true)
                for _ in 0..<150 where sinks.contains(where: { $0.statistics().processed < UInt64(total) }) { usleep(20_000) }
                let status = forwarder.interrupt()
                for sink in sinks { sink.stop() }
                print("wirecap-fwd --tap: sink \(records[0].matched), tap \(records[1].matched)\n\(forwarder.stderr)")
                #expect(status == 0)
                for record in records {
                    let (missing, unexpected, duplicated) = record.tally { _ in true }
                    #expect(missing == 0 && unexpected == 0 && duplicated == 0 && record.altered == 0 && record.reordered == 0)
                }
                #expect(forwarder.stderr.contains("\(total) copies sent to the tap \(tap.output), 0 copies the tap could not take"), "\(forwarder.stderr)")
            }
        }

        @Test("a live run as nobody (-Z): 50,000 frames over 2 queues, stopped with SIGINT, every frame at the sink once, the interval lines and the NDJSON add up", .timeLimit(.minutes(1)))
        func liveRun() throws {
            let total = 50_000
            let frames = SequencedFrame(flows: 32, size: 64)
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-fwd-\(getpid()).json").path
                defer { unlink(json) }
                let sink = try sandbox.sink.run {
                    try CaptureEngine(configuration: CaptureConfiguration(interface: sandbox.sinkInterface, ring: ForwardingTests.smallBlocks(1024), snapLength: 2048))
                }
                let ledger = SequenceLedger(expected: total, frames: frames, queues: 1, compareBytes: true)
                try sink.start { ledger.handler(queue: $0) }
                // --metrics listens on 127.0.0.1 in the forwarder's namespace.
                _ = try sandbox.forwarder.exec(["ip", "link", "set", "lo", "up"])
                let port = UInt16(20_000 + Int(getpid()) % 1000)
                let forwarder = try BackgroundCapture(
                    ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--queues", "2", "-s", "2048", "--block-size", "65536", "--blocks", "512", "--pool-chunks", "512", "--stats-json", json,
                     "--stats-interval", "0.2", "-Z", "nobody", "--metrics", "\(port)",
                    ],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding \(sandbox.inputInterface) -> \(sandbox.outputInterface): 2 queues")
                try forwarder.waitUntilListening()
                // -Z nobody: every thread is nobody's, with no capability, before a frame is sent.
                let nobody = String(try #require(getpwnam("nobody")?.pointee.pw_uid))
                for thread in try CaptureCommandTests.threadCredentials(of: forwarder.process.processIdentifier) {
                    #expect(thread.uids == [nobody, nobody, nobody, nobody] && thread.capEff == "0000000000000000", "\(thread)")
                }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let report = sender.sendSequenced(frames, count: total, prebuilt: true)
                for _ in 0..<100 where sink.statistics().processed < UInt64(total) { usleep(20_000) }
                // Every frame is at the sink: /metrics says each queue forwarded its share, all of them.
                let body = try sandbox.forwarder.run { try CaptureCommandTests.scrape(port: port) }
                let forwarded = CaptureCommandTests.values(body, "wirecap_forwarded_frames_total")
                #expect(forwarded.count == 2 && forwarded.values.reduce(0, +) == Double(total), "\(body.prefix(600))")
                #expect(body.contains("direction=\"\(sandbox.inputInterface)->\(sandbox.outputInterface)\""))
                // Long enough for a few interval lines however fast the frames went through.
                usleep(700_000)
                let status = forwarder.interrupt()
                sink.stop()
                let verdict = ledger.verdict()
                print("wirecap-fwd: sent \(report.sent) in \(String(format: "%.2f", report.seconds)) s; sink \(verdict)\n\(forwarder.stderr)")
                #expect(status == 0, "\(forwarder.stderr)")
                #expect(verdict.exactlyOnce && verdict.captured == total && verdict.foreign == 0, "\(verdict)")
                #expect(forwarder.stderr.contains("\(total) frames forwarded"), "\(forwarder.stderr)")
                // One JSON object a line, every 0.2 s and at the stop: the last is the whole run.
                let objects = try String(contentsOfFile: json, encoding: .utf8).split(separator: "\n").map {
                    try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                #expect(objects.count >= 2)
                #expect(objects.allSatisfy { $0?["conserved"] as? Bool == true })
                let object = objects.last ?? nil
                let counts = object?["total"] as? [String: Any]
                #expect(counts?["forwarded"] as? Int == total && counts?["capture_drops"] as? Int == 0 && counts?["in_flight"] as? Int == 0)
                #expect((object?["queues"] as? [Any])?.count == 2)
                let lines = forwarder.stderr.split(separator: "\n").filter { $0.contains(" | all ") }
                #expect(lines.count >= 2 && lines.allSatisfy { $0.contains("q0 ") && $0.contains("q1 ") && $0.contains(" fwd ") }, "\(forwarder.stderr)")
            }
        }
    }
}
