import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// tcpdump's own test corpus, replayed through the sandbox and captured by the real
    /// `wirecap capture -w`: whatever the veth accepts must come back byte for byte.
    @Suite("Fidelity against tcpdump's test corpus")
    struct CorpusFidelityTests {
        struct Frame {
            var file: String
            var index: Int
            var bytes: [UInt8]
        }

        /// Every record of every Ethernet capture in the corpus, in file order. Files libpcap cannot
        /// open, and the damaged tail of truncated files, are counted, not hidden.
        static func loadCorpus() throws -> (frames: [Frame], files: Int, otherLinkTypes: Int, unreadable: [String], damaged: [String]) {
            let names = try FileManager.default.contentsOfDirectory(atPath: Tool.corpus.path)
                .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            var frames: [Frame] = []
            var files = 0
            var other = 0
            var unreadable: [String] = []
            var damaged: [String] = []
            for name in names {
                let reader: SavefileReader
                do {
                    reader = try SavefileReader(path: Tool.corpus.appendingPathComponent(name).path)
                } catch {
                    unreadable.append(name)
                    continue
                }
                guard reader.linkType == LinkType.ethernet else {
                    other += 1
                    continue
                }
                files += 1
                var index = 0
                while true {
                    do {
                        guard let record = try reader.next() else { break }
                        frames.append(Frame(file: name, index: index, bytes: record.bytes))
                    } catch where error.isDamagedTimestamp {
                        // Only the record's time is damaged (a fuzzed file), and only bytes are
                        // sent: the reader goes on with the next record.
                    } catch {
                        damaged.append(name)
                        break
                    }
                    index += 1
                }
            }
            return (frames, files, other, unreadable, damaged)
        }

        @Test("every frame the veth accepts is captured with identical bytes; refusals are listed by reason", .timeLimit(.minutes(3)))
        func corpusRoundTrip() throws {
            try #require(FileManager.default.fileExists(atPath: Tool.corpus.path), "the corpus is expected at \(Tool.corpus.path) (../shared beside the checkout)")
            let corpus = try Self.loadCorpus()
            #expect(corpus.files > 300, "tcpdump 4.99.3's corpus has 358 Ethernet captures")
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-fidelity-\(getpid()).pcap").path
            defer { unlink(output) }

            var accepted: [Frame] = []
            var refused: [FrameSender.Refusal: [String]] = [:]
            let captured: [SavefileRecord] = try Sandbox.with { sandbox in
                let capture = try BackgroundCapture(["-i", sandbox.receiverInterface, "-w", output], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                for frame in corpus.frames {
                    if let refusal = frame.bytes.withUnsafeBytes({ sender.send($0) }) {
                        refused[refusal, default: []].append("\(frame.file)#\(frame.index)")
                    } else {
                        accepted.append(frame)
                    }
                }
                usleep(200_000)
                #expect(capture.interrupt() == 0, "capture exits cleanly on SIGINT: \(capture.stderr)")
                #expect(capture.stderr.contains("\(accepted.count) packets captured"), "\(capture.stderr)")
                return try SavefileReader(path: output).readAll()
            }

            print("corpus: \(corpus.files) Ethernet files, \(corpus.frames.count) frames; \(corpus.otherLinkTypes) files of other link types; unreadable by libpcap: \(corpus.unreadable); damaged tails: \(corpus.damaged)")
            print("veth accepted \(accepted.count) frames, captured \(captured.count)")
            for (reason, frames) in refused.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                print("refused \(frames.count) frames (\(reason.rawValue)): \(frames.prefix(12).joined(separator: ", "))\(frames.count > 12 ? ", ..." : "")")
            }
            #expect(refused[.other] == nil, "every refusal has a known reason")
            #expect(accepted.count + refused.values.reduce(0) { $0 + $1.count } == corpus.frames.count)
            #expect(captured.count == accepted.count)
            var mismatches: [String] = []
            for (sent, got) in zip(accepted, captured) where sent.bytes != got.bytes {
                mismatches.append("\(sent.file)#\(sent.index) (\(sent.bytes.count) bytes sent, \(got.bytes.count) captured)")
            }
            #expect(mismatches.isEmpty, "frames altered: \(mismatches.prefix(20))")

            // A real libpcap reader takes the file as its own.
            if let tcpdump = try? Command.locate("tcpdump") {
                let counted = try Command.run([tcpdump, "--count", "-r", output])
                #expect(counted.contains("\(captured.count) packets"), "tcpdump --count said: \(counted)")
            }
        }
    }
}
