import CWirecapLinux
import Dispatch
import Foundation
import Synchronization
import Testing
import WirecapEngine
import WirecapPcap
import WirecapSandbox
import WirecapSavefile

/// A value shared between a test and the threads it starts.
private final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func set(_ value: Value) { mutex.withLock { $0 = value } }
    func update(_ body: (inout Value) -> Void) { mutex.withLock { body(&$0) } }
}

/// Runs `body` on a thread of its own (a `Thread`, a pthread, not a task), as libpcap code runs
/// a capture loop; `wait` bounds how long the test waits for it.
private final class ReadingThread<Value: Sendable>: Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let outcome = Shared<Result<Value, any Error>?>(nil)

    init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [outcome, finished] in
            outcome.set(Result { try body() })
            finished.signal()
        }
        thread.start()
    }

    /// The thread's outcome, or nil when it has not finished within `seconds`.
    func wait(seconds: Double) -> Result<Value, any Error>? {
        guard finished.wait(timeout: .now() + seconds) == .success else { return nil }
        return outcome.value
    }
}

/// The calling thread's own CPU time and voluntary context switches (getrusage RUSAGE_THREAD).
private struct ThreadUsage: Sendable {
    var cpuSeconds: Double
    var voluntarySwitches: Int

    static func now() -> ThreadUsage {
        var usage = rusage()
        // RUSAGE_THREAD (1), which the Glibc module does not export.
        _ = getrusage(__rusage_who_t(1), &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return ThreadUsage(cpuSeconds: user + system, voluntarySwitches: Int(usage.ru_nvcsw))
    }
}

/// CAP_NET_RAW's number (linux/capability.h).
private let capNetRaw: Int32 = 13

extension SandboxSuites {
    /// The libpcap semantics issue 13 found missing in the facade, one test per finding: each
    /// failed (or crashed, or hung until its own bounded wait gave up) before commit d35ae3c.
    @Suite("pcap facade: libpcap semantics (issue 13)")
    struct FacadeSemanticsTests {
        static func options(queues: Int = 1, timeout: Int = 200) -> PcapHandle.LiveOptions {
            LiveHandleTests.options(queues: queues, timeout: timeout)
        }

        /// A receiver opened in the sandbox's receiving namespace with `options`.
        static func receiver(_ sandbox: Sandbox, _ options: PcapHandle.LiveOptions) throws -> PcapHandle {
            try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
        }

        /// The facade's own sender on the other end of the veth (pcap_inject, through the qdisc).
        static func sender(_ sandbox: Sandbox) throws -> PcapHandle {
            try sandbox.sender.run { try PcapHandle.openLive(device: sandbox.senderInterface, snapLength: 2048) }
        }

        /// Frame `sequence` of `frames` sent to 198.18.0.`host` (with its IPv4 checksum redone).
        static func addressed(_ frames: SequencedFrame, _ sequence: UInt64, host: UInt8) -> [UInt8] {
            var bytes = frames.bytes(sequence: sequence)
            bytes.replaceSubrange(30..<34, with: [198, 18, 0, host])
            bytes[24] = 0
            bytes[25] = 0
            var sum: UInt32 = 0
            for i in stride(from: 14, to: 34, by: 2) { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]) }
            while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
            let checksum = ~UInt16(sum)
            bytes[24] = UInt8(checksum >> 8)
            bytes[25] = UInt8(checksum & 0xff)
            return bytes
        }

        /// Every call on a closed handle throws `PcapError.closed`.
        static func expectClosed(_ handle: PcapHandle, sourceLocation: SourceLocation = #_sourceLocation) async {
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.next() }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.dispatch { _ in } }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.loop(count: 1) { _ in } }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.stats() }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.setFilter("udp") }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.datalink }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.snapshot }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.setNonblocking(true) }
            #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.selectableFileDescriptor }
            if handle.isLive {
                #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.engineStatistics() }
                #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try handle.inject([UInt8](repeating: 0, count: 64)) }
            }
            await #expect(throws: PcapError.closed, sourceLocation: sourceLocation) {
                for try await _ in handle.packets() {}
            }
            for queue in handle.queues {
                #expect(throws: PcapError.closed, sourceLocation: sourceLocation) { try queue.dispatch { _ in } }
            }
        }

        /// Finding: leaving a `for try await` over `packets()` and then calling `close()` raced
        /// with the hidden reader thread ("chunk ... recycled twice" on a live handle in 3 of 11
        /// runs; `pcap_close` under `pcap_next_ex` on a file). Ten times over a 2-queue live
        /// handle with frames flowing from another thread, and 50 times over a savefile: break
        /// after a few packets, close at once; no crash, and every call after throws `closed`.
        @Test("break out of for-await over packets() and close at once, traffic flowing: no crash, then closed", .timeLimit(.minutes(1)))
        func breakThenClose() async throws {
            let frames = SequencedFrame(flows: 64, size: 64)
            let sandbox = try Sandbox(queues: 2)
            defer { sandbox.tearDown() }
            let wire = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            let stop = Shared(false)
            let sent = Shared(0)
            let burst = (0..<UInt64(256)).map { frames.bytes(sequence: $0) }
            // Frames flow from another thread for the whole test, flat out.
            let sending = ReadingThread { [wire, burst] in
                while !stop.value {
                    for frame in burst { _ = frame.withUnsafeBytes { wire.send($0) } }
                    sent.update { $0 += burst.count }
                }
            }
            defer {
                stop.set(true)
                _ = sending.wait(seconds: 5)
            }
            for round in 0..<10 {
                let receiver = try Self.receiver(sandbox, Self.options(queues: 2))
                var taken = 0
                let sequence = receiver.packets()
                for try await _ in sequence {
                    taken += 1
                    if taken == 5 + round { break }
                }
                receiver.close()
                #expect(taken == 5 + round)
                await Self.expectClosed(receiver)
            }
            #expect(sent.value > 0, "frames were flowing")

            // A savefile: the reader thread reads (pcap_next_ex) while the loop is left and the
            // handle closed (pcap_close).
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-facade-\(getpid()).pcap").path
            defer { unlink(path) }
            let writer = try SavefileWriter(path: path, snapLength: 2048)
            for sequence in 0..<UInt64(100_000) {
                let frame = frames.bytes(sequence: sequence)
                frame.withUnsafeBytes { writer.write(bytes: $0, wireLength: frame.count, seconds: 1_700_000_000 + Int(sequence / 1000), nanoseconds: Int(sequence % 1000) * 1000) }
            }
            try writer.close()
            // 50 rounds: before the fix, each round crashed about one time in ten.
            for round in 0..<50 {
                let file = try PcapHandle.openOffline(path: path)
                var sequences: [UInt64] = []
                let sequence = file.packets()
                for try await packet in sequence {
                    if let s = packet.bytes.withUnsafeBytes({ SequencedFrame.sequence(of: $0) }) { sequences.append(s) }
                    if sequences.count == 3 + round { break }
                }
                file.close()
                #expect(sequences == Array(0..<UInt64(3 + round)))
                await Self.expectClosed(file)
            }
        }

        /// Finding: `packets()` buffered without bound (heap growth, not back-pressure). With
        /// `packets(buffer: 16)` and a consumer that took one packet and then waits, the reader
        /// thread stops within the first chunk: the engine has processed (recycled) far fewer
        /// than the 3,000 frames waiting, where before the thread copied every one of them into
        /// the stream.
        @Test("packets(buffer:) waits for the consumer: a stalled consumer holds the reader back", .timeLimit(.minutes(1)))
        func backPressure() async throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            let sandbox = try Sandbox()
            defer { sandbox.tearDown() }
            let receiver = try Self.receiver(sandbox, Self.options())
            let sender = try Self.sender(sandbox)
            defer {
                sender.close()
                receiver.close()
            }
            for sequence in 0..<UInt64(3_000) { try sender.inject(frames.bytes(sequence: sequence)) }
            var iterator = receiver.packets(buffer: 16).makeAsyncIterator()
            let first = try await iterator.next()
            #expect(first.flatMap { p in p.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) } } == 0)
            try await Task.sleep(for: .milliseconds(300))
            let statistics = try receiver.engineStatistics()
            #expect(statistics.received == 3_000, "all 3,000 captured")
            #expect(statistics.processed < 1_500, "the reader waits for the consumer: \(statistics.processed) of 3,000 processed")
            receiver.close()
            // The consumer may go on: what was buffered, then the end.
            var more = 0
            while let _ = try? await iterator.next() { more += 1 }
            #expect(more <= 1_024)
        }

        /// Finding: `packets()` had no timeout, so a `for try await` with no traffic never ended.
        /// `packets(endingAfterIdle: 300 ms)` ends by itself; a watchdog breaks the loop after
        /// 5 s if it does not (and the test fails).
        @Test("packets(endingAfterIdle:) ends a for-await with no traffic", .timeLimit(.minutes(1)))
        func endingAfterIdle() async throws {
            let sandbox = try Sandbox()
            defer { sandbox.tearDown() }
            let receiver = try Self.receiver(sandbox, Self.options(timeout: 1000))
            defer { receiver.close() }
            let ended = DispatchSemaphore(value: 0)
            let watchdogFired = Shared(false)
            let watchdog = ReadingThread { [receiver] in
                if ended.wait(timeout: .now() + 5) == .timedOut {
                    watchdogFired.set(true)
                    receiver.breakLoop()
                }
            }
            let started = ContinuousClock.now
            var count = 0
            for try await _ in receiver.packets(endingAfterIdle: .milliseconds(300)) { count += 1 }
            let elapsed = ContinuousClock.now - started
            ended.signal()
            _ = watchdog.wait(seconds: 10)
            #expect(!watchdogFired.value, "the sequence ended by itself, not by the watchdog's breakLoop after 5 s")
            #expect(count == 0)
            #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(3), "ended after about 300 ms idle: \(elapsed)")
        }

        /// Finding: with timeout 0, `loop` spun at 100 % CPU while idle; libpcap on Linux blocks
        /// until a packet arrives. The reading thread's own CPU time over a second of waiting
        /// must stay small.
        @Test("timeout 0 blocks until a packet comes: the idle loop's thread uses (almost) no CPU", .timeLimit(.minutes(1)))
        func timeoutZeroBlocks() throws {
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: 0))
                defer { receiver.close() }
                let reading = ReadingThread { [receiver] () throws -> (LoopResult, Double) in
                    let before = ThreadUsage.now()
                    let result = try receiver.loop { _ in }
                    return (result, ThreadUsage.now().cpuSeconds - before.cpuSeconds)
                }
                Thread.sleep(forTimeInterval: 1)
                receiver.breakLoop()
                guard let outcome = reading.wait(seconds: 10) else {
                    Issue.record("the loop did not return within 10 s of breakLoop()")
                    return
                }
                let (result, cpu) = try outcome.get()
                #expect(result.interrupted)
                #expect(result.processed == 0)
                #expect(cpu < 0.1, "the reading thread used \(cpu) s of CPU in about a second of waiting")
            }
        }

        /// Finding: a huge timeout trapped (the timeout in nanoseconds overflowed). With
        /// `timeoutMilliseconds = Int.max`, a `dispatch` waits and `breakLoop()` ends it.
        @Test("a huge timeout (Int.max ms) does not trap: dispatch waits until breakLoop", .timeLimit(.minutes(1)))
        func hugeTimeout() throws {
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: Int.max))
                defer { receiver.close() }
                let reading = ReadingThread { [receiver] in try receiver.dispatch { _ in } }
                Thread.sleep(forTimeInterval: 0.2)
                receiver.breakLoop()
                guard let outcome = reading.wait(seconds: 10) else {
                    Issue.record("dispatch did not return within 10 s of breakLoop()")
                    return
                }
                let result = try outcome.get()
                #expect(result.interrupted)
                #expect(result.processed == 0)
            }
        }

        /// Finding: `breakLoop()` took effect after the whole chunk, not after the packet in
        /// hand. With 200 frames waiting in one queue, a handler that breaks on its first packet
        /// gets exactly one, reported as broken; the next calls hand over the other 199, each
        /// once.
        @Test("breakLoop() from the handler takes effect after the packet in hand; nothing lost, nothing repeated", .timeLimit(.minutes(1)))
        func breakAfterPacketInHand() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: 100))
                let sender = try Self.sender(sandbox)
                defer {
                    sender.close()
                    receiver.close()
                }
                for sequence in 0..<UInt64(200) { try sender.inject(frames.bytes(sequence: sequence)) }
                // Wait until the 200 are in the pool's filled chunks, waiting for the reader.
                let deadline = ContinuousClock.now + .seconds(5)
                while try receiver.engineStatistics().queues.reduce(0, { $0 + $1.queued }) < 200 && ContinuousClock.now < deadline {
                    Thread.sleep(forTimeInterval: 0.01)
                }
                #expect(try receiver.engineStatistics().queues.reduce(0, { $0 + $1.queued }) == 200)
                var first: [UInt64] = []
                let broken = try receiver.dispatch { packet in
                    if let s = SequencedFrame.sequence(of: packet.bytes) { first.append(s) }
                    receiver.breakLoop()
                }
                #expect(broken.processed == 1, "the break took effect after the packet in hand")
                #expect(broken.interrupted)
                #expect(first == [0])
                let rest = try LiveHandleTests.collect(receiver, expected: 199)
                #expect(rest == Array(1..<200), "the other 199, in order, each once")
                #expect(try receiver.dispatch { _ in }.processed == 0, "nothing handed over twice")
            }
        }

        /// Finding: `breakLoop()` must wake a reader that waits for packets. With a 10 s timeout
        /// and no traffic, a `dispatch` on another thread returns within 100 ms of the break,
        /// and while it waited it slept (a handful of wake-ups), rather than polling the queues
        /// every millisecond to notice a break.
        @Test("breakLoop() wakes a dispatch that sleeps waiting for packets", .timeLimit(.minutes(1)))
        func breakWakesSleeper() throws {
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: 10_000))
                defer { receiver.close() }
                let reading = ReadingThread { [receiver] () throws -> (LoopResult, ContinuousClock.Instant, Int) in
                    let before = ThreadUsage.now()
                    let result = try receiver.dispatch { _ in }
                    let returned = ContinuousClock.now
                    return (result, returned, ThreadUsage.now().voluntarySwitches - before.voluntarySwitches)
                }
                Thread.sleep(forTimeInterval: 0.2)
                let breakAt = ContinuousClock.now
                receiver.breakLoop()
                guard let outcome = reading.wait(seconds: 15) else {
                    Issue.record("dispatch did not return within 15 s of breakLoop()")
                    return
                }
                let (result, returned, wakeUps) = try outcome.get()
                #expect(result.interrupted)
                #expect(returned - breakAt < .milliseconds(100), "returned \(returned - breakAt) after the break")
                #expect(wakeUps <= 20, "the reader slept until woken: \(wakeUps) voluntary context switches in about 200 ms of waiting")
            }
        }

        /// Finding: a live `setFilter` after the process lost CAP_NET_RAW silently compiled the
        /// offline program (VLAN tags at byte 12), so `vlan 100` never matched. Capabilities are
        /// per thread: a thread that dropped CAP_NET_RAW from its effective set calls
        /// `setFilter("vlan 100")` on a handle opened before, and gets an error naming
        /// CAP_NET_RAW; the opening thread, which kept it, still can.
        @Test("a live setFilter without CAP_NET_RAW says so instead of compiling a program that never matches", .timeLimit(.minutes(1)))
        func setFilterWithoutNetRaw() throws {
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options())
                defer { receiver.close() }
                let unprivileged = ReadingThread { [receiver] () throws -> String? in
                    guard CWirecapLinux_drop_effective_capability(capNetRaw) == 0 else {
                        throw PcapError("capset: \(String(cString: strerror(errno)))")
                    }
                    do {
                        try receiver.setFilter("vlan 100")
                        return nil
                    } catch let error as PcapError {
                        return error.message
                    }
                }
                guard let outcome = unprivileged.wait(seconds: 20) else {
                    Issue.record("setFilter did not return within 20 s")
                    return
                }
                let message = try outcome.get()
                #expect(message != nil, "setFilter without CAP_NET_RAW must throw, not install the offline program")
                #expect(message?.contains("CAP_NET_RAW") == true, "\(message ?? "no error")")
                // This thread kept CAP_NET_RAW.
                try receiver.setFilter("vlan 100")
            }
        }

        /// Finding: `setFilter`'s netmask was ignored on a live handle, so `ip broadcast` threw
        /// libpcap's "netmask not known". With 0xffffff00, only the frames to 198.18.0.255 of
        /// those sent to 198.18.0.255 and 198.18.0.7 come through, live and from a savefile.
        @Test("setFilter's netmask: ip broadcast on a /24, live and on a savefile", .timeLimit(.minutes(1)))
        func netmask() throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            let frame = { (sequence: UInt64) in Self.addressed(frames, sequence, host: sequence % 2 == 0 ? 255 : 7) }
            let broadcast = Array(stride(from: UInt64(0), to: 200, by: 2))

            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-netmask-\(getpid()).pcap").path
            defer { unlink(path) }
            let writer = try SavefileWriter(path: path, snapLength: 2048)
            for sequence in 0..<UInt64(200) {
                let bytes = frame(sequence)
                bytes.withUnsafeBytes { writer.write(bytes: $0, wireLength: bytes.count, seconds: 1_700_000_000, nanoseconds: Int(sequence) * 1000) }
            }
            try writer.close()
            let file = try PcapHandle.openOffline(path: path)
            try file.setFilter("ip broadcast", netmask: 0xffff_ff00)
            var fromFile: [UInt64] = []
            try file.dispatch { packet in if let s = SequencedFrame.sequence(of: packet.bytes) { fromFile.append(s) } }
            file.close()
            #expect(fromFile == broadcast, "the savefile's broadcast frames only")

            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: 100))
                let sender = try Self.sender(sandbox)
                defer {
                    sender.close()
                    receiver.close()
                }
                do {
                    try receiver.setFilter("ip broadcast", netmask: 0xffff_ff00)
                } catch {
                    Issue.record("a live setFilter with a netmask must compile ip broadcast: \(error)")
                    return
                }
                for sequence in 0..<UInt64(200) { try sender.inject(frame(sequence)) }
                let seen = try LiveHandleTests.collect(receiver, expected: 101)
                #expect(seen == broadcast, "only the frames to 198.18.0.255")
                #expect(try receiver.stats().received == 100, "the kernel kept the others out")
            }
        }

        /// Finding: reading one handle from two threads was a data race that only a comment
        /// forbade. While thread A is inside `loop`, a `dispatch` from another thread throws a
        /// `PcapError` saying the handle is being read by another thread; A goes on until
        /// `breakLoop()`.
        @Test("a second thread reading a handle gets an error, not a data race", .timeLimit(.minutes(1)))
        func secondReaderRefused() throws {
            try Sandbox.with { sandbox in
                let receiver = try Self.receiver(sandbox, Self.options(timeout: 2000))
                defer { receiver.close() }
                let threadA = ReadingThread { [receiver] in try receiver.loop { _ in } }
                Thread.sleep(forTimeInterval: 0.2)
                let started = ContinuousClock.now
                let error = #expect(throws: PcapError.self, "thread B's dispatch while thread A is inside loop") {
                    try receiver.dispatch { _ in }
                }
                #expect(error?.message.contains("another thread") == true, "\(error?.message ?? "no error")")
                #expect(ContinuousClock.now - started < .seconds(1), "refused at once, not after the timeout")
                receiver.breakLoop()
                guard let outcome = threadA.wait(seconds: 10) else {
                    Issue.record("thread A's loop did not return within 10 s of breakLoop()")
                    return
                }
                #expect(try outcome.get().interrupted, "thread A was not disturbed, and the break ended it")
            }
        }

        /// Not a finding of issue 13: a bug in d35ae3c's `packets()`, found by `breakThenClose`.
        /// `StreamControl` made its `slots` semaphore with the buffer size as its initial value;
        /// the producer takes a slot per packet it yields and the consumer gives one back per
        /// packet it takes. A consumer that left the loop while packets were still buffered left
        /// the value below the initial one, and libdispatch traps when such a semaphore is freed
        /// ("Semaphore object deallocated while in use", SIGILL in `_dispatch_semaphore_dispose`).
        /// Now made at 0 and raised. Run in a child process (an exit test), so a crash is
        /// recorded rather than fatal.
        @Test("leaving a for-await over packets() with packets still buffered does not crash the process", .timeLimit(.minutes(1)))
        func leaveWithBufferedPackets() async throws {
            let frames = SequencedFrame(flows: 4, size: 64)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-leave-\(getpid()).pcap").path
            defer { unlink(path) }
            let writer = try SavefileWriter(path: path, snapLength: 2048)
            for sequence in 0..<UInt64(100) {
                let frame = frames.bytes(sequence: sequence)
                frame.withUnsafeBytes { writer.write(bytes: $0, wireLength: frame.count, seconds: 1_700_000_000, nanoseconds: Int(sequence) * 1000) }
            }
            try writer.close()
            await #expect(processExitsWith: .success) { [path = path as String] in
                let file = try PcapHandle.openOffline(path: path)
                for try await _ in file.packets() {
                    // Time for the producer to buffer the other 99, then leave.
                    try await Task.sleep(for: .milliseconds(100))
                    break
                }
                file.close()
                // The producer thread ends and frees the semaphore.
                try await Task.sleep(for: .milliseconds(300))
            }
        }
    }
}
