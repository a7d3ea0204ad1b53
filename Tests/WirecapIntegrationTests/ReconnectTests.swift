import Foundation
import Testing
import WirecapEngine
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// `--reconnect`: a long-running capture or forwarder outlives its link going down, or its
    /// interface going away and coming back, and loses nothing sent while the link was there.
    @Suite("--reconnect")
    struct ReconnectTests {
        static let frames = SequencedFrame(flows: 16, size: 64)
        /// Frames sent before the link is lost, and as many after it is back.
        static let half = 5_000

        /// Runs `wirecap capture --reconnect` over 2 queues with the pool in `sandbox`; sends
        /// frames 0..<half, calls `lose` (takes the link away), waits for the capture to say so,
        /// calls `restore`, waits for it to say it listens again, sends half..<2 x half, stops it
        /// with SIGINT and checks the savefile holds every frame once, and the counts.
        static func captureAcross(_ sandbox: Sandbox, lose: () throws -> Void, restore: () throws -> Void) throws {
            let device = sandbox.receiverInterface
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-reconnect-\(getpid()).pcap").path
            let json = output + ".json"
            defer {
                unlink(output)
                unlink(json)
            }
            let capture = try BackgroundCapture(
                ["-i", device, "--queues", "2", "--pool-chunks", "16", "--reconnect", "-w", output, "--stats-json", json], in: sandbox.receiver)
            try capture.waitUntilListening()
            let before = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                .sendSequenced(frames, count: half, prebuilt: true)
            // Past the 8 ms block timeout: the frames sent are in blocks, not in the kernel's queues.
            usleep(300_000)
            try lose()
            try capture.waitFor("lost its link")
            #expect(capture.process.isRunning, "the capture waits for the link instead of exiting: \(capture.stderr)")
            try restore()
            try capture.waitFor("listening on \(device): 2 queues (reconnect 1 after")
            // A new sender: after a re-created interface the old one's ifindex is gone.
            let after = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                .sendSequenced(frames, count: half, first: UInt64(half), prebuilt: true)
            usleep(300_000)
            let status = capture.interrupt()
            print("capture --reconnect: sent \(before.sent) + \(after.sent)\n\(capture.stderr)")
            #expect(before.sent == half && after.sent == half)
            #expect(status == 0, "\(capture.stderr)")
            let sequences = try SavefileReader(path: output).readAll().compactMap { record in
                record.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) }
            }
            let counts = Dictionary(sequences.map { ($0, 1) }, uniquingKeysWith: +)
            let total = 2 * half
            #expect(counts.count == total && counts.values.allSatisfy { $0 == 1 } && counts.keys.allSatisfy { $0 < UInt64(total) },
                "every frame sent before and after the loss is in the file once: \(counts.count) distinct of \(sequences.count)")
            #expect(capture.stderr.contains("\(total) packets captured"), "\(capture.stderr)")
            #expect(capture.stderr.contains("1 reconnect, "), "\(capture.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            #expect(object?["reconnects"] as? Int == 1)
            #expect((object?["gap_seconds"] as? Double ?? 0) > 0)
            #expect(object?["conserved"] as? Bool == true)
            #expect((object?["total"] as? [String: Any])?["captured"] as? Int == total)
        }

        @Test("capture across ip link set down / up: every frame before and after, the process runs on, 1 reconnect", .timeLimit(.minutes(1)))
        func captureAcrossFlap() throws {
            try Sandbox.with(queues: 2) { sandbox in
                let link = ["ip", "-n", sandbox.receiver.name, "link", "set", sandbox.receiverInterface]
                try Self.captureAcross(sandbox, lose: { try Command.run(link + ["down"]) }, restore: { try Command.run(link + ["up"]) })
            }
        }

        @Test("capture across the interface deleted and made again (a new ifindex): every frame, 1 reconnect", .timeLimit(.minutes(1)))
        func captureAcrossRecreation() throws {
            try Sandbox.with(queues: 2) { sandbox in
                try Self.captureAcross(
                    sandbox, lose: { try Command.run(["ip", "-n", sandbox.receiver.name, "link", "delete", sandbox.receiverInterface]) },
                    restore: { try sandbox.addLink(queues: 2) })
            }
        }

        @Test("wirecap-fwd --reconnect across a flap of IN: the sink gets every frame sent before and after once, 1 reconnect", .timeLimit(.minutes(1)))
        func forwardAcrossFlap() throws {
            let total = 2 * Self.half
            try ForwardingSandbox.with(queues: 2) { sandbox in
                let sink = try sandbox.sink.run {
                    try CaptureEngine(configuration: CaptureConfiguration(interface: sandbox.sinkInterface, ring: ForwardingTests.smallBlocks(1024), snapLength: 2048))
                }
                let ledger = SequenceLedger(expected: total, frames: Self.frames, queues: 1, compareBytes: true)
                try sink.start { ledger.handler(queue: $0) }
                let input = sandbox.inputInterface
                let forwarder = try BackgroundCapture(
                    ["-i", input, "-o", sandbox.outputInterface, "--queues", "2", "-s", "2048", "--block-size", "65536", "--blocks", "512", "--reconnect"],
                    in: sandbox.forwarder, command: [Tool.forwarder], ready: "forwarding \(input) -> \(sandbox.outputInterface): 2 queues")
                try forwarder.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let before = sender.sendSequenced(Self.frames, count: Self.half, prebuilt: true)
                for _ in 0..<250 where sink.statistics().processed < UInt64(Self.half) { usleep(20_000) }
                let link = ["ip", "-n", sandbox.forwarder.name, "link", "set", input]
                try Command.run(link + ["down"])
                try forwarder.waitFor("lost its link")
                try Command.run(link + ["up"])
                try forwarder.waitFor("(reconnect 1 after")
                let after = sender.sendSequenced(Self.frames, count: Self.half, first: UInt64(Self.half), prebuilt: true)
                for _ in 0..<250 where sink.statistics().processed < UInt64(total) { usleep(20_000) }
                let status = forwarder.interrupt()
                sink.stop()
                let verdict = ledger.verdict()
                print("wirecap-fwd --reconnect: sent \(before.sent) + \(after.sent); sink \(verdict)\n\(forwarder.stderr)")
                #expect(status == 0, "\(forwarder.stderr)")
                #expect(verdict.exactlyOnce && verdict.captured == total, "\(verdict)")
                #expect(forwarder.stderr.contains("\(total) frames forwarded"), "\(forwarder.stderr)")
                #expect(forwarder.stderr.contains("1 reconnect, "), "\(forwarder.stderr)")
            }
        }
    }
}
