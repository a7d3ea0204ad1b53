import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// A tcpdump expression on a live multi-queue capture: compiled by libpcap, run by the kernel
    /// on every fanout member.
    @Suite("Capture filters")
    struct FilterTests {
        @Test("only matching frames are captured, across 4 queues, and the rest never reach user space", .timeLimit(.minutes(1)))
        func kernelFilter() throws {
            let total = 20_000
            let frames = SequencedFrame(flows: 64, size: 64)
            let directory = FileManager.default.temporaryDirectory
            let output = directory.appendingPathComponent("wirecap-filter-\(getpid()).pcap").path
            let json = directory.appendingPathComponent("wirecap-filter-\(getpid()).json").path
            defer {
                unlink(output)
                unlink(json)
            }
            // Flow f has UDP source port 1024 + f: the expression keeps flows 0...7.
            let expression = ["udp", "src", "portrange", "1024-1031"]
            try Sandbox.with(queues: 4) { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "4", "-w", output, "--stats-json", json] + expression, in: sandbox.receiver)
                try capture.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                #expect(sender.sendSequenced(frames, count: total).sent == total)
                usleep(300_000)
                #expect(capture.interrupt() == 0, "\(capture.stderr)")
            }
            let expected = (0..<UInt64(total)).filter { frames.flow(of: $0) < 8 }
            let captured = try SavefileReader(path: output).readAll().compactMap { record in
                record.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) }
            }
            #expect(captured.count == expected.count, "captured \(captured.count), expected \(expected.count)")
            #expect(Set(captured) == Set(expected), "exactly the matching frames")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            let totals = try #require(object["total"] as? [String: Any])
            let received = try #require(totals["received"] as? Int)
            print("filter \(expression.joined(separator: " ")): \(total) sent, \(received) accepted by the kernel, \(total - received) kept out of user space")
            #expect(received == expected.count, "the kernel accepted only the matching frames")
            #expect(totals["capture_drops"] as? Int == 0)
        }

        @Test("-Q in keeps what the interface received and leaves out what the host sent, as tcpdump -Q", .timeLimit(.minutes(1)))
        func direction() throws {
            let frames = SequencedFrame(flows: 16, size: 64)
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-direction-\(getpid()).pcap").path
            defer { unlink(output) }
            try Sandbox.with(queues: 2) { sandbox in
                // On the sender's side: its own frames go out there, the receiver's come in.
                let capture = try BackgroundCapture(
                    ["-i", sandbox.senderInterface, "--queues", "2", "-Q", "in", "-w", output], in: sandbox.sender)
                try capture.waitUntilListening()
                // Through the qdisc, where captures on the sending interface see frames go out.
                let outgoing = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface, bypassingQdisc: false) }
                let incoming = try sandbox.receiver.run { try FrameSender(interface: sandbox.receiverInterface) }
                #expect(outgoing.sendSequenced(frames, count: 1_000, first: 0).sent == 1_000)
                #expect(incoming.sendSequenced(frames, count: 1_000, first: 1_000).sent == 1_000)
                usleep(300_000)
                #expect(capture.interrupt() == 0, "\(capture.stderr)")
            }
            let captured = try SavefileReader(path: output).readAll().compactMap { record in
                record.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) }
            }
            #expect(captured.sorted() == Array(1_000..<2_000), "only the frames that came in, each once")
            expectOneLineError(try Tool.run(["capture", "-r", "/nonexistent.pcap", "-Q", "out"]), containing: ["-Q out", "-i"])
        }

        @Test("a bad expression gives libpcap's message on one line")
        func badExpression() throws {
            let outcome = try Tool.run(["capture", "-i", "lo", "tcp", "port"])
            #expect(outcome.status != 0)
            #expect(outcome.stderr.hasPrefix("wirecap: bad filter expression 'tcp port': "))
            #expect(outcome.stderr.contains("syntax error"))
            #expect(outcome.stderr.split(separator: "\n").count == 1)
        }

        @Test("-r reads a file and filters it as tcpdump -r does")
        func readFile() throws {
            let file = Tool.corpus.appendingPathComponent("QinQpacket.pcap").path
            try #require(FileManager.default.fileExists(atPath: file), "the corpus is expected at \(Tool.corpus.path)")
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-read-\(getpid()).pcap").path
            defer { unlink(output) }
            let outcome = try Tool.run(["capture", "-r", file, "-w", output, "vlan", "and", "arp"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let mine = try SavefileReader(path: output).readAll()
            if let tcpdump = try? Command.locate("tcpdump") {
                let counted = try Command.run([tcpdump, "--count", "-r", file, "vlan", "and", "arp"])
                #expect(counted.contains("\(mine.count) packets"), "tcpdump: \(counted), wirecap: \(mine.count)")
            }
            #expect(mine.count > 0)
            #expect(try Tool.run(["capture", "-r", "/nonexistent.pcap"]).stderr.contains("wirecap: cannot read /nonexistent.pcap"))
        }
    }
}
