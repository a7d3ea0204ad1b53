import Foundation
import Synchronization
import Testing
import WirecapEngine
import WirecapPcap
import WirecapSandbox

extension SandboxSuites {
    /// The facade's live handle: pcap_open_live's shape over the multi-queue engine.
    @Suite("pcap facade, live")
    struct LiveHandleTests {
        @Test("a filtered live handle on 4 queues hands over exactly the matching frames, in counted dispatches", .timeLimit(.minutes(1)))
        func filteredDispatch() throws {
            let frames = SequencedFrame(flows: 64, size: 64)
            try Sandbox.with(queues: 4) { sandbox in
                var options = LivePcapHandle.Options()
                options.queues = 4
                options.snapLength = 2048
                options.timeoutMilliseconds = 200
                options.filter = "udp src portrange 1024-1031"
                let receiver = try sandbox.receiver.run { try LivePcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                let sender = try sandbox.sender.run { try LivePcapHandle.openLive(device: sandbox.senderInterface, options: LivePcapHandle.Options()) }
                // inject: the facade's own sender puts frames on the wire.
                for sequence in 0..<UInt64(2_000) { try sender.inject(frames.bytes(sequence: sequence)) }
                var seen: [UInt64] = []
                var dispatches = 0
                while seen.count < 256 && dispatches < 1000 {
                    let result = try receiver.dispatch(count: 7) { packet in
                        if let s = SequencedFrame.sequence(of: packet.bytes) { seen.append(s) }
                    }
                    #expect(result.processed <= 7, "dispatch never hands over more than its count")
                    dispatches += 1
                    if result.processed == 0 { break }
                }
                let expected = (0..<UInt64(2_000)).filter { frames.flow(of: $0) < 8 }
                #expect(seen.sorted() == expected, "exactly the 256 matching frames, each once")
                let stats = try receiver.stats()
                #expect(stats.received == UInt32(expected.count), "the kernel kept out the other 1,744")
                #expect(stats.dropped == 0)
                sender.close()
                receiver.close()
                #expect(throws: PcapError.closed) { try receiver.stats() }
            }
        }

        @Test("breakLoop from another thread ends a loop that would wait forever", .timeLimit(.minutes(1)))
        func breakLoop() throws {
            try Sandbox.with { sandbox in
                var options = LivePcapHandle.Options()
                options.snapLength = 2048
                options.timeoutMilliseconds = 100
                let handle = try sandbox.receiver.run { try LivePcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                let started = Date()
                let breaker = Thread {
                    Thread.sleep(forTimeInterval: 0.3)
                    handle.breakLoop()
                }
                breaker.start()
                let result = try handle.loop { _ in }
                #expect(result.interrupted)
                #expect(Date().timeIntervalSince(started) < 5)
                handle.close()
            }
        }

        @Test("packets() hands over owned copies to for-await code, and ends when the loop is broken", .timeLimit(.minutes(1)))
        func asyncPackets() async throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            let sandbox = try Sandbox()
            defer { sandbox.tearDown() }
            var options = LivePcapHandle.Options()
            options.snapLength = 2048
            options.immediate = true
            let receiver = try sandbox.receiver.run { try LivePcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
            let sender = try sandbox.sender.run { try LivePcapHandle.openLive(device: sandbox.senderInterface) }
            for sequence in 0..<UInt64(100) { try sender.inject(frames.bytes(sequence: sequence)) }
            var sequences: [UInt64] = []
            for try await packet in receiver.packets() {
                if let s = packet.bytes.withUnsafeBytes({ SequencedFrame.sequence(of: $0) }) { sequences.append(s) }
                if sequences.count == 100 { break }
            }
            #expect(sequences == Array(0..<100), "in order on one queue, each once")
            sender.close()
            receiver.close()
        }

        @Test("a bad filter and a missing device give libpcap's and the engine's messages")
        func errors() throws {
            var options = LivePcapHandle.Options()
            options.filter = "tcp port"
            #expect(throws: PcapError.self) { try LivePcapHandle.openLive(device: "lo", options: options) }
            let missing = #expect(throws: PcapError.self) { try LivePcapHandle.openLive(device: "wcnosuch0") }
            #expect(missing?.description.contains("no such interface") == true)
        }
    }
}
