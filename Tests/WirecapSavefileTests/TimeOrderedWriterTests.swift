import Foundation
import Testing
import WirecapSavefile

/// The merge of several queues into one file, on synthetic input: times are chosen, not read.
@Suite("Time-ordered writer: queues merged in timestamp order within a window")
struct TimeOrderedWriterTests {
    /// 2023-11-14 22:13:20 UTC, in ns: where every test's clock starts.
    static let start: UInt64 = 1_700_000_000_000_000_000
    static let millisecond: UInt64 = 1_000_000
    static let window = 100 * millisecond

    /// A writer to a scratch file with a small snap length, so that a lane holds a dozen records.
    final class Harness {
        let path: String
        let ordered: TimeOrderedWriter
        var appenders: [TimeOrderedWriter.Appender]

        init(_ name: String, queues: Int, laneBytes: Int = 1 << 20, limit: UInt64? = nil) throws {
            path = temporaryPath("ordered-\(name).pcap")
            let writer = try SavefileWriter(path: path, snapLength: 256)
            let ordered = TimeOrderedWriter(
                writer: writer, queues: queues, window: TimeOrderedWriterTests.window, laneBytes: laneBytes, limit: limit, now: TimeOrderedWriterTests.start)
            self.ordered = ordered
            appenders = (0..<queues).map { ordered.appender(queue: $0) }
        }

        deinit { unlink(path) }

        /// Appends a 60-byte frame stamped `start + time`, its bytes made from the time.
        func append(_ queue: Int, _ time: UInt64) {
            let frame = udpFrame(length: 60, seed: UInt8(truncatingIfNeeded: time))
            frame.withUnsafeBytes { appenders[queue].append(bytes: $0, wireLength: 60, timestamp: TimeOrderedWriterTests.start + time) }
        }

        @discardableResult
        func commit(_ queue: Int, at time: UInt64) -> Bool { ordered.commit(&appenders[queue], now: TimeOrderedWriterTests.start + time) }

        func expire(at time: UInt64) { ordered.expire(now: TimeOrderedWriterTests.start + time) }

        /// Finishes and closes the file; the records' times since `start`, in file order, each
        /// checked against the bytes it was appended with.
        func times() throws -> [UInt64] {
            ordered.finish()
            try ordered.writer.close()
            return try SavefileReader(path: path).readAll().map { record in
                let time = UInt64(record.seconds) * 1_000_000_000 + UInt64(record.nanoseconds) - TimeOrderedWriterTests.start
                #expect(record.bytes == udpFrame(length: 60, seed: UInt8(truncatingIfNeeded: time)), "record at \(time) kept its bytes")
                return time
            }
        }
    }

    /// SplitMix64: the same "random" interleaving on every run.
    struct Mix {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    @Test("interleaved queues, committed in batches in any order, come out in time order, all of them")
    func interleaved() throws {
        let harness = try Harness("interleaved", queues: 3)
        // Every queue's times rise; the queues' times interleave.
        var next: [UInt64] = [0, 0, 0]
        var mix = Mix(state: 7)
        var appended = 0
        for round in 0..<300 {
            let q = mix.next(3)
            for _ in 0..<(1 + mix.next(20)) {
                next[q] += UInt64(1 + mix.next(5)) * 1000
                harness.append(q, next[q])
                appended += 1
            }
            // Commits come at most 1 ms apart: no queue goes quiet.
            harness.commit(q, at: UInt64(round) * 1000)
        }
        let times = try harness.times()
        #expect(times.count == appended)
        #expect(times == times.sorted())
        #expect(harness.ordered.late == 0)
    }

    @Test("a commit writes only what every queue has committed past")
    func heldUntilEveryQueueIsPast() throws {
        let harness = try Harness("held", queues: 2)
        for t: UInt64 in [1, 3, 5, 7] { harness.append(0, t * Self.millisecond) }
        harness.commit(0, at: 8 * Self.millisecond)
        #expect(harness.ordered.written == 0, "queue 1 has delivered nothing and is not quiet")
        for t: UInt64 in [2, 4, 6, 8] { harness.append(1, t * Self.millisecond) }
        harness.commit(1, at: 9 * Self.millisecond)
        #expect(harness.ordered.written == 7, "up to 7 ms, the latest of queue 0")
        #expect(try harness.times() == (1...8).map { UInt64($0) * Self.millisecond })
    }

    @Test("a silent queue holds the others back for the window, then only what is younger than the window")
    func silentQueue() throws {
        let harness = try Harness("silent", queues: 2)
        for t: UInt64 in 1...5 { harness.append(0, t * Self.millisecond) }
        harness.commit(0, at: 5 * Self.millisecond)
        harness.expire(at: 50 * Self.millisecond)
        #expect(harness.ordered.written == 0)
        // Queue 1 has been quiet for the window since the start: what left the wire more than
        // the window ago cannot be preceded any more.
        harness.expire(at: Self.window + 3 * Self.millisecond)
        #expect(harness.ordered.written == 3)
        harness.expire(at: 2 * Self.window)
        #expect(harness.ordered.written == 5)
        #expect(try harness.times() == (1...5).map { UInt64($0) * Self.millisecond })
    }

    @Test("a queue that goes quiet stops holding the others back after the window")
    func windowExpiry() throws {
        let harness = try Harness("expiry", queues: 2)
        harness.append(1, 1 * Self.millisecond)
        harness.commit(1, at: 1 * Self.millisecond)
        for t: UInt64 in 2...10 { harness.append(0, t * Self.millisecond) }
        harness.commit(0, at: 10 * Self.millisecond)
        #expect(harness.ordered.written == 1, "queue 1's packet; queue 0's wait for queue 1")
        // Queue 0 keeps committing (nothing new); queue 1 went quiet at 1 ms.
        harness.expire(at: Self.window)
        #expect(harness.ordered.written == 1, "queue 1 not yet quiet for the window")
        harness.expire(at: Self.window + 6 * Self.millisecond)
        #expect(harness.ordered.written == 6, "up to 6 ms: older than the window")
        harness.commit(0, at: Self.window + 20 * Self.millisecond)
        #expect(harness.ordered.written == 10)
        #expect(try harness.times() == (1...10).map { UInt64($0) * Self.millisecond })
    }

    @Test("finish writes everything held, in order, even what a queue still holds back")
    func finish() throws {
        let harness = try Harness("finish", queues: 3)
        for t: UInt64 in [5, 6, 9] { harness.append(0, t) }
        for t: UInt64 in [1, 7, 8] { harness.append(1, t) }
        harness.commit(0, at: 0)
        harness.commit(1, at: 0)
        #expect(harness.ordered.written == 0, "queue 2 holds everything back")
        #expect(try harness.times() == [1, 5, 6, 7, 8, 9])
        #expect(harness.ordered.written == 6)
    }

    @Test("with a limit, exactly that many are written: the earliest; the commit says so")
    func limit() throws {
        let harness = try Harness("limit", queues: 2, limit: 5)
        for t: UInt64 in stride(from: 2, through: 20, by: 2) { harness.append(0, t) }
        #expect(harness.commit(0, at: 0) == false)
        for t: UInt64 in stride(from: 1, through: 19, by: 2) { harness.append(1, t) }
        #expect(harness.commit(1, at: 0) == true)
        #expect(harness.ordered.limitReached)
        for t: UInt64 in 21...30 { harness.append(1, t) }
        harness.commit(1, at: 0)
        #expect(try harness.times() == [1, 2, 3, 4, 5])
        #expect(harness.ordered.written == 5)
    }

    @Test("a full lane writes the oldest held packets out, in order, and wraps without losing one")
    func fullLane() throws {
        // The smallest lane: four records of the snap length, 14 of these 60-byte frames.
        let harness = try Harness("full", queues: 2, laneBytes: 0)
        #expect(harness.ordered.laneBytes < 2000)
        // Queue 1 has committed its first packet and stays active: queue 0 is held back by it
        // and fills its lane, within a batch as well as between commits.
        harness.append(1, 1)
        harness.commit(1, at: 0)
        var time: UInt64 = 1
        for batch in 0..<100 {
            for _ in 0..<(batch % 30) {
                time += 1
                harness.append(0, time)
            }
            harness.commit(0, at: 0)
            harness.commit(1, at: 0)
        }
        #expect(harness.ordered.written > 1000, "the lane is far smaller than what went through it")
        for t in (time + 1)...(time + 40) { harness.append(1, t) }
        harness.commit(1, at: 0)
        let times = try harness.times()
        #expect(times == Array(1...(time + 40)))
        #expect(harness.ordered.late == 0)
    }

    @Test("a packet older than one already written is still written, and counted late")
    func late() throws {
        let harness = try Harness("late", queues: 2)
        harness.append(0, 10 * Self.millisecond)
        harness.commit(0, at: 2 * Self.window)
        #expect(harness.ordered.written == 1, "queue 1 quiet since the start")
        harness.append(1, 5 * Self.millisecond)
        harness.commit(1, at: 2 * Self.window)
        #expect(try harness.times() == [10 * Self.millisecond, 5 * Self.millisecond])
        #expect(harness.ordered.late == 1)
    }
}
