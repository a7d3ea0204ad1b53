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
                // The same command under wirecap: its own name in front.
                expectOneLineError(try Tool.run(["fwd", "-i", input, "-o", input], in: ns), containing: ["itself"])
            }
        }

        @Test("as an IPS (--drop-signature): the sink sees exactly the frames without the signature", .timeLimit(.minutes(1)))
        func intrusionPrevention() throws {
            let total = 20_000
            let frames = SequencedFrame(flows: 16, size: 64)
            // 198.18.0.3, the source address of flow 3: a sixteenth of the frames.
            let signature = try Signature(parsing: "hex:c6120003")
            let carries = (0..<UInt64(total)).map { sequence in frames.bytes(sequence: sequence).withUnsafeBytes { signature.occurs(in: $0) } }
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let sink = try sandbox.sink.run {
                    try CaptureEngine(configuration: CaptureConfiguration(interface: sandbox.sinkInterface, ring: ForwardingTests.smallBlocks(1024), snapLength: 2048))
                }
                let record = SinkRecord(expected: total, frames: frames, rewrite: nil)
                try sink.start { _ in record.handler() }
                let forwarder = try BackgroundCapture(
                    ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--queues", "2", "-s", "2048", "--block-size", "65536", "--blocks", "512", "--drop-signature", "hex:c6120003"],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding")
                try forwarder.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: total, prebuilt: true)
                let dropped = carries.filter { $0 }.count
                for _ in 0..<100 where sink.statistics().processed < UInt64(total - dropped) { usleep(20_000) }
                let status = forwarder.interrupt()
                sink.stop()
                let (missing, unexpected, duplicated) = record.tally { !carries[Int($0)] }
                print("wirecap-fwd as an IPS: \(dropped) of \(total) frames carry the signature; sink \(record.matched), missing \(missing), unexpected \(unexpected)\n\(forwarder.stderr)")
                #expect(status == 0)
                #expect(dropped > 0 && dropped < total)
                #expect(missing == 0 && unexpected == 0 && duplicated == 0 && record.altered == 0 && record.matched == total - dropped)
                #expect(forwarder.stderr.contains("\(total - dropped) frames forwarded, \(total) received, \(dropped) dropped by verdict"), "\(forwarder.stderr)")
            }
        }

        @Test("a live run: 50,000 frames over 2 queues, stopped with SIGINT, every frame at the sink once, the JSON adds up", .timeLimit(.minutes(1)))
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
                let forwarder = try BackgroundCapture(
                    ["-i", sandbox.inputInterface, "-o", sandbox.outputInterface, "--queues", "2", "-s", "2048", "--block-size", "65536", "--blocks", "512", "--pool-chunks", "512", "--stats-json", json,
                    ],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding \(sandbox.inputInterface) -> \(sandbox.outputInterface): 2 queues")
                try forwarder.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let report = sender.sendSequenced(frames, count: total, prebuilt: true)
                for _ in 0..<100 where sink.statistics().processed < UInt64(total) { usleep(20_000) }
                let status = forwarder.interrupt()
                sink.stop()
                let verdict = ledger.verdict()
                print("wirecap-fwd: sent \(report.sent) in \(String(format: "%.2f", report.seconds)) s; sink \(verdict)\n\(forwarder.stderr)")
                #expect(status == 0, "\(forwarder.stderr)")
                #expect(verdict.exactlyOnce && verdict.captured == total && verdict.foreign == 0, "\(verdict)")
                #expect(forwarder.stderr.contains("\(total) frames forwarded"), "\(forwarder.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
                let counts = object?["total"] as? [String: Any]
                #expect(counts?["forwarded"] as? Int == total && counts?["capture_drops"] as? Int == 0 && counts?["in_flight"] as? Int == 0)
                #expect(object?["conserved"] as? Bool == true)
                #expect((object?["queues"] as? [Any])?.count == 2)
            }
        }
    }
}
