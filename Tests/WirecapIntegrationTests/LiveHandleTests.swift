import CWirecapLinux
import Foundation
import Synchronization
import Testing
import WirecapEngine
import WirecapPcap
import WirecapSandbox

/// The handle a SIGUSR1 handler breaks (a C signal handler cannot capture context).
let signalTarget = Mutex<PcapHandle?>(nil)

extension SandboxSuites {
    /// The facade's live side: pcap_open_live's shape over the multi-queue engine.
    @Suite("pcap facade, live")
    struct LiveHandleTests {
        static func options(queues: Int = 1, timeout: Int = 200, filter: String? = nil) -> PcapHandle.LiveOptions {
            var options = PcapHandle.LiveOptions()
            options.queues = queues
            options.snapLength = 2048
            options.timeoutMilliseconds = timeout
            options.filter = filter
            return options
        }

        /// A receiver opened with `options` in the receiving namespace, and a sender opened the
        /// pcap_open_live way on the other end of the veth.
        static func open(_ sandbox: Sandbox, _ options: PcapHandle.LiveOptions) throws -> (receiver: PcapHandle, sender: PcapHandle) {
            let receiver = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
            let sender = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, snapLength: 2048) }
            return (receiver, sender)
        }

        /// Reads sequenced frames until `expected` have come or a dispatch times out empty.
        static func collect(_ handle: PcapHandle, expected: Int, count: Int = -1) throws -> [UInt64] {
            var seen: [UInt64] = []
            var empty = 0
            while seen.count < expected && empty < 3 {
                let result = try handle.dispatch(count: count) { packet in
                    if let s = SequencedFrame.sequence(of: packet.bytes) { seen.append(s) }
                }
                empty = result.processed == 0 ? empty + 1 : 0
            }
            return seen
        }

        @Test("a filtered live handle on 4 queues hands over exactly the matching frames, in counted dispatches", .timeLimit(.minutes(1)))
        func filteredDispatch() throws {
            let frames = SequencedFrame(flows: 64, size: 64)
            try Sandbox.with(queues: 4) { sandbox in
                // The sender is opened the pcap_open_live way.
                let (receiver, sender) = try Self.open(sandbox, Self.options(queues: 4, filter: "udp src portrange 1024-1031"))
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
                #expect(stats.interfaceDropped == 0)
                #expect(try receiver.datalink == 1)
                #expect(try receiver.snapshot == 2048)
                sender.close()
                receiver.close()
                #expect(throws: PcapError.closed) { try receiver.stats() }
                #expect(throws: PcapError.closed) { try receiver.dispatch { _ in } }
            }
        }

        @Test("setFilter on a running 4-queue capture: after it returns, only what the new filter accepts", .timeLimit(.minutes(1)))
        func filterSwap() throws {
            let frames = SequencedFrame(flows: 64, size: 64)
            try Sandbox.with(queues: 4) { sandbox in
                let (receiver, sender) = try Self.open(sandbox, Self.options(queues: 4, filter: "udp src portrange 1024-1031"))
                // Accepted by the old filter and left unread: in the rings and the pool when the
                // filter changes.
                for sequence in 0..<UInt64(2_000) { try sender.inject(frames.bytes(sequence: sequence)) }
                Thread.sleep(forTimeInterval: 0.05)
                // Called from this thread, outside the receiver's namespace: the kernel program
                // is compiled for the device in its own namespace.
                try receiver.setFilter("udp src portrange 1032-1039")
                for sequence in 2_000..<UInt64(4_000) { try sender.inject(frames.bytes(sequence: sequence)) }
                let expected = (2_000..<UInt64(4_000)).filter { (8..<16).contains(frames.flow(of: $0)) }
                let seen = try Self.collect(receiver, expected: expected.count + 1)
                #expect(expected.count == 248)
                #expect(seen.sorted() == expected, "none of the 256 frames the old filter let in, all 248 the new one accepts")
                let stats = try receiver.stats()
                #expect(stats.received == UInt32(256 + expected.count), "the kernel accepted 256 under the old filter, 248 under the new one")
                sender.close()
                receiver.close()
            }
        }

        @Test("vlan filters run in the kernel, where the tag is metadata, and the tag comes back inline", .timeLimit(.minutes(1)))
        func vlanInKernel() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            func tagged(_ sequence: UInt64, vlan: UInt16?) -> [UInt8] {
                let frame = frames.bytes(sequence: sequence)
                guard let vlan else { return frame }
                return Array(frame[0..<12]) + [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xff)] + Array(frame[12...])
            }
            try Sandbox.with(queues: 2) { sandbox in
                let (receiver, sender) = try Self.open(sandbox, Self.options(queues: 2, filter: "vlan 100 and udp"))
                let vlans: [UInt16?] = [100, 200, nil]
                for sequence in 0..<UInt64(300) { try sender.inject(tagged(sequence, vlan: vlans[Int(sequence % 3)])) }
                var seen: [UInt64] = []
                var tags: Set<UInt16> = []
                var empty = 0
                while seen.count < 100 && empty < 3 {
                    let result = try receiver.dispatch { packet in
                        let bytes = Array(packet.bytes)
                        guard bytes.count > 16, bytes[12] == 0x81, bytes[13] == 0x00 else { return }
                        tags.insert(UInt16(bytes[14] & 0x0f) << 8 | UInt16(bytes[15]))
                        let untagged = Array(bytes[0..<12]) + Array(bytes[16...])
                        if let s = untagged.withUnsafeBytes({ SequencedFrame.sequence(of: $0) }) { seen.append(s) }
                    }
                    empty = result.processed == 0 ? empty + 1 : 0
                }
                #expect(seen.sorted() == Array(stride(from: UInt64(0), to: 300, by: 3)), "exactly the VLAN 100 frames")
                #expect(tags == [100])
                #expect(try receiver.stats().received == 100, "the kernel's filter chose: nothing else reached the rings")
                sender.close()
                receiver.close()
            }
        }

        @Test("setDirection: in, out and inout, decided by the kernel", .timeLimit(.minutes(1)))
        func direction() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            try Sandbox.with { sandbox in
                var handles: [PcapDirection: PcapHandle] = [:]
                for direction in PcapDirection.allCases {
                    let handle = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, options: Self.options()) }
                    try handle.setDirection(direction)
                    handles[direction] = handle
                }
                // Outgoing on the sender's interface: injected there, through the qdisc.
                let outgoing = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, options: Self.options()) }
                for sequence in 0..<UInt64(200) { try outgoing.inject(frames.bytes(sequence: sequence)) }
                // Incoming there: injected on the other end of the veth.
                let incoming = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: Self.options()) }
                for sequence in 1_000..<UInt64(1_200) { try incoming.inject(frames.bytes(sequence: sequence)) }
                let sent = Array(0..<UInt64(200))
                let received = Array(1_000..<UInt64(1_200))
                #expect(try Self.collect(handles[.out]!, expected: 201).sorted() == sent)
                #expect(try Self.collect(handles[.in]!, expected: 201).sorted() == received)
                #expect(try Self.collect(handles[.inout]!, expected: 401).sorted() == sent + received)
                for handle in handles.values { handle.close() }
                outgoing.close()
                incoming.close()
            }
        }

        @Test("non-blocking dispatch with the selectable descriptor in a poll loop", .timeLimit(.minutes(1)))
        func selectable() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            try Sandbox.with(queues: 2) { sandbox in
                let (receiver, sender) = try Self.open(sandbox, Self.options(queues: 2, timeout: 5_000))
                try receiver.setNonblocking(true)
                #expect(try receiver.isNonblocking)
                let fd = try receiver.selectableFileDescriptor
                #expect(fd >= 0)
                var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                #expect(poll(&descriptor, 1, 50) == 0, "nothing captured: not readable")
                let started = ContinuousClock.now
                #expect(try receiver.dispatch { _ in }.processed == 0)
                #expect(ContinuousClock.now - started < .seconds(1), "non-blocking: no wait for the 5 s timeout")

                for sequence in 0..<UInt64(500) { try sender.inject(frames.bytes(sequence: sequence)) }
                var seen: [UInt64] = []
                var polls = 0
                while seen.count < 500 && polls < 200 {
                    polls += 1
                    guard poll(&descriptor, 1, 1_000) == 1 else { break }
                    // A small count leaves chunks behind: the descriptor must stay readable.
                    try receiver.dispatch(count: 50) { packet in
                        if let s = SequencedFrame.sequence(of: packet.bytes) { seen.append(s) }
                    }
                }
                #expect(seen.sorted() == Array(0..<500), "every frame, found by polling alone")
                #expect(poll(&descriptor, 1, 50) == 0, "all read: not readable again")
                sender.close()
                receiver.close()
            }
        }

        @Test("dumpOpen on a live handle writes a file tcpdump reads, at the handle's precision", .timeLimit(.minutes(1)))
        func dumpLive() throws {
            let frames = SequencedFrame(flows: 4, size: 100)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-live-\(getpid()).pcap").path
            defer { unlink(path) }
            try Sandbox.with { sandbox in
                var options = Self.options()
                options.precision = .nano
                let (receiver, sender) = try Self.open(sandbox, options)
                for sequence in 0..<UInt64(100) { try sender.inject(frames.bytes(sequence: sequence)) }
                let dumper = try receiver.dumpOpen(path: path)
                var dumped = 0
                var firstNext: OwnedPacket? = nil
                while dumped < 100 {
                    if firstNext == nil {
                        firstNext = try receiver.next()
                        if let packet = firstNext { try dumper.dump(packet); dumped += 1 }
                        continue
                    }
                    let result = try receiver.dispatch { packet in
                        try? dumper.dump(packet)
                        dumped += 1
                    }
                    if result.processed == 0 { break }
                }
                try dumper.close()
                #expect(dumped == 100)
                #expect(firstNext?.precision == .nano)
                // The file's packets, read back by libpcap, are the frames that were sent.
                let file = try PcapHandle.openOffline(path: path, precision: .nano)
                var sequences: [UInt64] = []
                try file.dispatch { packet in
                    #expect(packet.wireLength == 100)
                    if let s = SequencedFrame.sequence(of: packet.bytes) { sequences.append(s) }
                }
                #expect(sequences.sorted() == Array(0..<100))
                #expect(try file.snapshot == 2048)
                file.close()
                if let tcpdump = try? Command.locate("tcpdump") {
                    let output = try Command.run([tcpdump, "-nr", path, "--time-stamp-precision=nano"])
                    #expect(output.split(separator: "\n").filter { $0.contains(" IP ") }.count == 100, "tcpdump prints every record")
                }
                sender.close()
                receiver.close()
            }
        }

        @Test("N queues with offloading: exactly once, counted per queue, promiscuous as asked", .timeLimit(.minutes(1)))
        func offloadingAndPromiscuous() throws {
            let frames = SequencedFrame(flows: 64, size: 64, elephantPercent: 80)
            try Sandbox.with(queues: 2) { sandbox in
                var options = Self.options(queues: 2)
                options.poolChunks = 8
                options.offloadThreshold = 0.5
                let receiver = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                // The kernel counts packet sockets that asked for promiscuous mode.
                func promiscuity(_ namespace: NetworkNamespace, _ device: String) throws -> Int? {
                    let json = try namespace.exec(["ip", "-d", "-j", "link", "show", "dev", device])
                    let links = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
                    return (links?.first?["promiscuity"] as? NSNumber)?.intValue
                }
                #expect(try promiscuity(sandbox.receiver, sandbox.receiverInterface) == 2, "one membership per queue")
                let sender = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, promiscuous: false) }
                #expect(try promiscuity(sandbox.sender, sandbox.senderInterface) == 0)
                for sequence in 0..<UInt64(3_000) { try sender.sendPacket(frames.bytes(sequence: sequence)) }
                let seen = try Self.collect(receiver, expected: 3_000)
                #expect(seen.sorted() == Array(0..<3_000), "every frame once, whichever queue's chunk carried it")
                let statistics = try receiver.engineStatistics()
                #expect(statistics.queues.count == 2)
                #expect(statistics.isConserved)
                #expect(statistics.processed == 3_000)
                #expect(statistics.captureDrops == 0)
                #expect(throws: PcapError.self) { try receiver.setFilter("udp port") }
                sender.close()
                receiver.close()
                #expect(try promiscuity(sandbox.receiver, sandbox.receiverInterface) == 0, "memberships go with the sockets")
            }
        }

        @Test("breakLoop from another thread ends a loop that would wait forever", .timeLimit(.minutes(1)))
        func breakLoop() throws {
            try Sandbox.with { sandbox in
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: Self.options(timeout: 100)) }
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

        @Test("breakLoop from a signal handler ends the loop", .timeLimit(.minutes(1)))
        func breakLoopFromSignal() throws {
            try Sandbox.with { sandbox in
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: Self.options(timeout: 100)) }
                signalTarget.withLock { $0 = handle }
                let previous = signal(SIGUSR1) { _ in signalTarget.withLockIfAvailable { $0?.breakLoop() } }
                defer {
                    signal(SIGUSR1, previous)
                    signalTarget.withLock { $0 = nil }
                }
                let started = Date()
                let signaller = Thread {
                    Thread.sleep(forTimeInterval: 0.3)
                    kill(getpid(), SIGUSR1)
                }
                signaller.start()
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
            var options = Self.options()
            options.immediate = true
            let receiver = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
            let sender = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface) }
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

        @Test("the interface counters behind ps_ifdrop come from the device's own namespace")
        func interfaceCounters() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            try Sandbox.with { sandbox in
                let sender = try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, snapLength: 2048) }
                for sequence in 0..<UInt64(123) { try sender.inject(frames.bytes(sequence: sequence)) }
                sender.close()
                let ours = try sandbox.receiver.run { () -> CWirecapLinux_link_counters in
                    var counters = CWirecapLinux_link_counters()
                    let ifindex = Int32(bitPattern: if_nametoindex(sandbox.receiverInterface))
                    #expect(CWirecapLinux_read_link_counters(ifindex, &counters) == 0)
                    return counters
                }
                // iproute2 reads the same IFLA_STATS64.
                let json = try sandbox.receiver.exec(["ip", "-s", "-s", "-j", "link", "show", "dev", sandbox.receiverInterface])
                let links = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
                let rx = (links?.first?["stats64"] as? [String: Any])?["rx"] as? [String: Any]
                #expect(ours.rx_packets >= 123)
                #expect((rx?["packets"] as? NSNumber)?.uint64Value == ours.rx_packets)
                #expect((rx?["missed"] as? NSNumber)?.uint64Value ?? 0 == ours.rx_missed_errors, "iproute2 leaves out counters that are 0")
                #expect((rx?["dropped"] as? NSNumber)?.uint64Value == ours.rx_dropped)
            }
        }

        @Test("a bad filter and a missing device give libpcap's and the engine's messages")
        func errors() throws {
            var options = PcapHandle.LiveOptions()
            options.filter = "tcp port"
            let bad = #expect(throws: PcapError.self) { try PcapHandle.openLive(device: "lo", options: options) }
            #expect(bad?.description.contains("syntax error") == true, "\(bad.map { "\($0)" } ?? "")")
            let missing = #expect(throws: PcapError.self) { try PcapHandle.openLive(device: "wcnosuch0") }
            // Nonsense sizes are refused before anything is opened, in the options' own terms.
            func refused(_ change: (inout PcapHandle.LiveOptions) -> Void, _ phrases: [String]) {
                var options = PcapHandle.LiveOptions()
                change(&options)
                let error = #expect(throws: PcapError.self) { try PcapHandle.openLive(device: "lo", options: options) }
                let text = error?.description ?? ""
                for phrase in phrases { #expect(text.contains(phrase), "\(text)") }
                #expect(!text.contains("\n"))
            }
            refused({ $0.queues = 0 }, ["LiveOptions.queues 0", "1 to 256"])
            refused({ $0.blockSize = 5000 }, ["LiveOptions.blockSize 5000", "page size", "try 8192"])
            refused({ $0.blockSize = 4096 }, ["LiveOptions.blockSize 4096 is smaller than one packet of snap length 262144", "LiveOptions.snapLength"])
            refused({ $0.offloadThreshold = 1.5 }, ["LiveOptions.offloadThreshold 1.5", "0 to 1"])
            refused({ $0.poolChunks = 0 }, ["LiveOptions.poolChunks 0"])
            refused({ $0.snapLength = 0 }, ["LiveOptions.snapLength 0"])
            #expect(missing?.description.contains("no such interface") == true)
            // The engine's error stays a value under the facade's text.
            #expect(missing?.underlying == .noSuchInterface("wcnosuch0"))
        }
    }
}
