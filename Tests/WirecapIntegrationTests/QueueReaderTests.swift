import CWirecapLinux
import Foundation
import Synchronization
import Testing
import WirecapEngine
import WirecapPcap
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// Issue 13: a live handle with N queues gives N readers, each read by a thread of its own,
    /// with buddy offloading among them.
    @Suite("pcap facade: a reader per queue")
    struct QueueReaderTests {
        /// What one reader saw: per chunk, its owner, its sequence, and the frames' numbers.
        struct Chunk: Sendable {
            var owner: Int
            var sequence: UInt64
            var frames: [UInt64] = []
        }

        static func options(queues: Int) -> PcapHandle.LiveOptions {
            var options = PcapHandle.LiveOptions()
            options.queues = queues
            options.snapLength = 2048
            options.timeoutMilliseconds = 100
            return options
        }

        final class Counter: Sendable { let value = Atomic<Int>(0) }

        /// Records every chunk and frame a reader hands over; stops every reader once all frames
        /// have come.
        struct Recorder: PacketHandler {
            let reader: Int
            let total: Int
            let seen: Counter
            let stopAll: @Sendable () -> Void
            /// Microseconds to sleep per chunk: a slow reader.
            let slowness: UInt32
            var chunks: [Chunk] = []
            var queues: Set<Int> = []

            mutating func chunkBegins(owner: Int, sequence: UInt64) {
                chunks.append(Chunk(owner: owner, sequence: sequence))
                if slowness > 0 { usleep(slowness) }
            }

            mutating func handle(_ packet: Packet) {
                queues.insert(packet.queue)
                guard let number = SequencedFrame.sequence(of: packet.bytes) else { return }
                chunks[chunks.count - 1].frames.append(number)
                if seen.value.add(1, ordering: .relaxed).newValue >= total { stopAll() }
            }
        }

        /// Sends `total` numbered frames and reads them with one thread per `handle.queues[i]`,
        /// reader i sleeping `slowness[i]` us per chunk; returns each reader's record.
        static func readAll(
            queues: Int, total: Int, frames: SequencedFrame, options: PcapHandle.LiveOptions, slowness: [UInt32], rate: Double = 200_000
        ) throws -> (recorders: [Recorder], handle: PcapHandle, perQueue: [PcapStatistics], whole: PcapStatistics, engine: CaptureStatistics) {
            try Sandbox.with(queues: queues) { sandbox in
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                #expect(handle.queues.count == queues)
                #expect(handle.queues.map(\.queue) == Array(0..<queues).map { Optional($0) })
                let seen = Counter()
                let readers = handle.queues
                let stopAll: @Sendable () -> Void = { for reader in readers { reader.breakLoop() } }
                let results = Locked<[Int: Recorder]>([:])
                let threads = (0..<queues).map { i in
                    Thread {
                        var recorder = Recorder(reader: i, total: total, seen: seen, stopAll: stopAll, slowness: slowness[i])
                        do { _ = try readers[i].loop(handler: &recorder) } catch { Issue.record("reader \(i): \(error)") }
                        results.withLock { $0[i] = recorder }
                    }
                }
                threads.forEach { $0.start() }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let report = sender.sendSequenced(frames, count: total, rate: rate)
                #expect(report.sent == total)
                // Bounded: if frames went missing, stop the readers after a while and let the
                // checks say what is missing.
                let deadline = CWirecapLinux_monotonic_ns() + 20_000_000_000
                while results.withLock({ $0.count }) < queues && CWirecapLinux_monotonic_ns() < deadline { usleep(10_000) }
                if results.withLock({ $0.count }) < queues { stopAll() }
                while results.withLock({ $0.count }) < queues { usleep(10_000) }
                let perQueue = try handle.queues.map { try $0.stats() }
                let whole = try handle.stats()
                #expect(try handle.queues[0].totalStats() == whole)
                let engine = try handle.engineStatistics()
                handle.close()
                return (results.withLock { map in (0..<queues).map { map[$0]! } }, handle, perQueue, whole, engine)
            }
        }

        @Test("four readers on four threads: every frame once, each reader its own queue's, per-queue stats add up", .timeLimit(.minutes(1)))
        func fourReaders() throws {
            let total = 20_000
            let options = Self.options(queues: 4)
            let frames = SequencedFrame(flows: 64, size: 64)
            let (recorders, handle, perQueue, whole, engine) = try Self.readAll(
                queues: 4, total: total, frames: frames, options: options, slowness: [0, 0, 0, 0])
            let counts = recorders.map { $0.chunks.reduce(0) { $0 + $1.frames.count } }
            print("4 readers: frames per reader \(counts), pcap stats per queue \(perQueue.map(\.received)), whole \(whole.received)")
            let all = recorders.flatMap { $0.chunks.flatMap(\.frames) }
            #expect(all.count == total)
            #expect(Set(all).count == total, "every frame once")
            for (i, recorder) in recorders.enumerated() {
                #expect(recorder.queues.isSubset(of: [i]), "without offloading, reader \(i) reads only queue \(i): \(recorder.queues)")
                #expect(recorder.chunks.allSatisfy { $0.owner == i })
                #expect(UInt32(counts[i]) == perQueue[i].received, "queue \(i)'s ps_recv counts what its reader handed over")
            }
            #expect(perQueue.reduce(0) { $0 + $1.received } == whole.received)
            #expect(whole.received == UInt32(total) && whole.dropped == 0)
            #expect(engine.isConserved && engine.processed == UInt64(total))
            #expect(throws: PcapError.closed) { try handle.queues[2].next() }
        }

        @Test("a slow reader's chunks go to the idle one (buddy offloading), and restoring order per owner by sequence restores every flow's order", .timeLimit(.minutes(1)))
        func offloadingAmongReaders() throws {
            let total = 30_000
            var options = Self.options(queues: 2)
            options.blockSize = 4096
            options.bufferSize = 4096 * 64
            options.poolChunks = 1024
            options.offloadThreshold = 0.1
            // Most frames in one flow, so one queue gets most of the traffic, and its reader is
            // also the slow one.
            let frames = SequencedFrame(flows: 16, size: 64, elephantPercent: 90)
            let elephantQueue = try Self.queueOfElephant(frames)
            var slowness: [UInt32] = [0, 0]
            slowness[elephantQueue] = 2_000
            let (recorders, _, _, _, engine) = try Self.readAll(queues: 2, total: total, frames: frames, options: options, slowness: slowness, rate: 50_000)
            let idle = 1 - elephantQueue
            let offloadedChunks = recorders[idle].chunks.filter { $0.owner == elephantQueue }.count
            print(
                "offloading: reader \(elephantQueue) (slow) took \(recorders[elephantQueue].chunks.count) chunks, reader \(idle) took \(recorders[idle].chunks.count), \(offloadedChunks) of them queue \(elephantQueue)'s; engine: offloaded out \(engine.queues.map(\.offloadedOut)), capture drops \(engine.captureDrops)"
            )
            #expect(offloadedChunks > 0, "the idle reader took chunks of the slow one's queue")
            #expect(engine.queues[elephantQueue].offloadedOut == UInt64(offloadedChunks))
            #expect(engine.captureDrops == 0)
            // Every (owner, sequence) once, and every frame once.
            let chunks = recorders.flatMap(\.chunks)
            #expect(Set(chunks.map { "\($0.owner)/\($0.sequence)" }).count == chunks.count)
            let all = chunks.flatMap(\.frames)
            #expect(all.count == total && Set(all).count == total)
            // As read, the slow reader's later chunks overtake its earlier ones in the other
            // reader; put back in order per owner by sequence, every flow is in order again.
            let restored = chunks.sorted { ($0.owner, $0.sequence) < ($1.owner, $1.sequence) }
            var last: [Int: UInt64] = [:]
            var outOfOrder = 0
            for chunk in restored {
                for number in chunk.frames {
                    let flow = frames.flow(of: number)
                    if let previous = last[flow], previous > number { outOfOrder += 1 }
                    last[flow] = number
                }
            }
            #expect(outOfOrder == 0, "frames out of order within a flow after restoring by (owner, sequence)")
        }

        /// Issue 13, found by a new user: a file dumped from a 2-queue handle went back in time
        /// (128 of 4441 records), since the handle hands over chunks of each queue in turn.
        @Test("dumpOpen on a 2-queue handle writes every packet in time order", .timeLimit(.minutes(1)))
        func dumpInTimeOrder() throws {
            let total = 20_000
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-dump-order-\(getpid()).pcap").path
            defer { unlink(output) }
            try Sandbox.with(queues: 2) { sandbox in
                var options = Self.options(queues: 2)
                options.precision = .nano
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                defer { handle.close() }
                let dumper = try handle.dumpOpen(path: output)
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let frames = SequencedFrame(flows: 64, size: 64)
                let sending = Thread { _ = sender.sendSequenced(frames, count: total, rate: 20_000) }
                sending.start()
                var dumped = 0
                var empty = 0
                while dumped < total && empty < 10 {
                    let result = try handle.dispatch { packet in try? dumper.dump(packet) }
                    dumped += result.processed
                    empty = result.processed == 0 ? empty + 1 : 0
                }
                try dumper.close()
                #expect(dumped == total)
            }
            let reader = try SavefileReader(path: output)
            var (count, behind, newest) = (0, 0, 0)
            while let record = try reader.nextBorrowed() {
                let time = record.seconds * 1_000_000_000 + record.nanoseconds
                if time < newest { behind += 1 }
                newest = max(newest, time)
                count += 1
            }
            print("2-queue handle, dumpOpen: \(count) of \(total) records, \(behind) older than one before them")
            #expect(count == total)
            #expect(behind == 0, "records never go back in time")
        }

        /// Whether ThreadSanitizer's or AddressSanitizer's runtime is in the process.
        static let underSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil
            || dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

        /// A field of /proc/self/status in KiB ("VmLck", "VmRSS").
        static func status(_ field: String) throws -> Int {
            let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field + ":") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }

        @Test("the memory a default 2-queue handle holds is what LiveOptions.memory says (72 MiB, the 64 MiB pool locked)", .timeLimit(.minutes(1)))
        func memory() throws {
            var options = PcapHandle.LiveOptions()
            options.queues = 2
            let memory = options.memory
            #expect(memory.ringBytesPerQueue == 4 << 20 && memory.poolBytesPerQueue == 32 << 20 && memory.total == 72 << 20)
            try Sandbox.with(queues: 2) { sandbox in
                let (locked, resident) = (try Self.status("VmLck"), try Self.status("VmRSS"))
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                let (lockedOpen, residentOpen) = (try Self.status("VmLck"), try Self.status("VmRSS"))
                handle.close()
                let lockedClosed = try Self.status("VmLck")
                print("2-queue handle, defaults: locked +\((lockedOpen - locked) / 1024) MiB, resident +\((residentOpen - resident) / 1024) MiB, locked after close +\((lockedClosed - locked) / 1024) MiB")
                // Other suites may lock or free pools meanwhile; this one's pools dominate. The
                // sanitizers' runtimes turn mlock into nothing, so under them only residency counts.
                if !Self.underSanitizer {
                    #expect(lockedOpen - locked >= 2 * memory.poolBytesPerQueue / 1024 - 1024)
                }
                #expect(residentOpen - resident >= 2 * memory.poolBytesPerQueue / 1024 - 1024)
                #expect(lockedClosed - locked < 1024, "close() gives the pools back, not the last reference")
            }
        }

        /// The queue the kernel's hash puts the elephant flow on, found by sending its frames.
        static func queueOfElephant(_ frames: SequencedFrame) throws -> Int {
            // Sequence numbers whose flow is the elephant (flow 0 takes elephantPercent of them).
            let elephant = frames.flow(of: 0)
            return try Sandbox.with(queues: 2) { sandbox in
                var options = PcapHandle.LiveOptions()
                options.queues = 2
                options.timeoutMilliseconds = 100
                let handle = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                defer { handle.close() }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let numbers = (0..<UInt64(1000)).filter { frames.flow(of: $0) == elephant }.prefix(20)
                for number in numbers { frames.bytes(sequence: number).withUnsafeBytes { _ = sender.send($0) } }
                var queue: Int? = nil
                _ = try handle.dispatch { packet in if queue == nil { queue = packet.queue } }
                return try #require(queue)
            }
        }
    }
}
