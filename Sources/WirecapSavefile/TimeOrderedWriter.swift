#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import WirecapEngine

/// Writes the packets of several queues to one savefile in timestamp order, merging the queues
/// within a bounded window, as a reader of one tcpdump file expects.
///
/// Each queue's blocks reach user space on their own thread at their own time, so blocks written
/// as they come go back in time at every change of queue. Here each queue's thread copies its
/// packets into its own lane with an `Appender`, without a lock, and commits them once per batch
/// (a block or a chunk): the commit takes the lock once and writes, in timestamp order across
/// lanes, every held packet that no queue can still precede. A queue can precede a packet until
/// it has committed a later timestamp; a queue quiet (no commit) for `window` nanoseconds holds
/// back only packets younger than the window, since what it delivers next left the wire after
/// it went quiet, less its delivery delay (the block timeout, the work on a block), which the
/// window must exceed. `expire` applies the quiet rule when no queue commits at all. Held bytes
/// are bounded per lane: a lane that fills writes the oldest held packets out, in order, to make
/// room. `finish` writes everything left at the stop.
///
/// Times are CLOCK_REALTIME nanoseconds (`now()`), the clock of packet timestamps. The order
/// rests on each lane being in time order itself, which the kernel gives for one ring. A packet
/// older than one already written (its queue fell more than the window behind, or a lane
/// filled) is still written, and counted in `late`: nothing is dropped but what the limit cuts.
///
/// With a `limit`, the writer stops at that many packets written, the earliest in time of those
/// it was given; the rest are dropped and `limitReached` says so.
public final class TimeOrderedWriter: @unchecked Sendable {
    // @unchecked: `writer` is used only inside `merge`'s lock; an appender's bytes not yet
    // committed are its own thread's.
    public let writer: SavefileWriter
    public let queues: Int
    /// How long a queue must be quiet before it holds back only what is younger than this.
    public let window: UInt64
    /// Bytes per lane: the packets a queue may have held, 16 bytes of header each.
    public let laneBytes: Int
    public let limit: UInt64?
    /// The lanes' shared side and the writer, under one lock taken once per commit.
    private let merge: Mutex<Merge>
    /// The lanes' storage, for `deinit`: while the writer lives, only through `merge`.
    private let lanes: UnsafeMutablePointer<Lane>

    /// A record: timestamp (ns), captured length, wire length, then the bytes, padded to 16 so
    /// that the bytes left at the end of a lane are always 0 or room for a header.
    @usableFromInline static let headerBytes = 16
    /// A captured length that marks the rest of the lane as unused: the next record is at its start.
    @usableFromInline static let wrapMarker = UInt32.max

    @inlinable @inline(__always)
    static func recordBytes(captured: Int) -> Int { headerBytes + (captured + 15) & ~15 }

    /// - Parameters:
    ///   - queues: lanes, one per queue, numbered from 0.
    ///   - window: nanoseconds of quiet after which a queue holds back only what is younger; more
    ///     than the longest a queue may take to deliver a packet (the block timeout, the work on
    ///     a block).
    ///   - laneBytes: held bytes per lane; raised to four of the longest records. A commit leaves
    ///     at least half a lane free, so a batch of up to that size appends without the lock.
    ///   - limit: packets to write at most (-c).
    ///   - now: `now()`: quiet is counted from here for a queue yet to commit.
    public init(writer: SavefileWriter, queues: Int, window: UInt64, laneBytes: Int, limit: UInt64? = nil, now: UInt64) {
        precondition(queues >= 1, "a writer needs a queue")
        self.writer = writer
        self.queues = queues
        self.window = window
        let laneBytes = (max(laneBytes, 4 * Self.recordBytes(captured: writer.snapLength + 4)) + 15) & ~15
        self.laneBytes = laneBytes
        self.limit = limit
        lanes = .allocate(capacity: queues)
        for q in 0..<queues {
            lanes.advanced(by: q).initialize(to: Lane(storage: .allocate(byteCount: laneBytes, alignment: 64), lastCommit: now))
        }
        merge = Mutex(Merge(writer: writer, lanes: lanes, queues: queues, laneBytes: laneBytes, window: window, limit: limit))
    }

    deinit {
        for q in 0..<queues { lanes[q].storage.deallocate() }
        lanes.deinitialize(count: queues)
        lanes.deallocate()
    }

    /// What the lock guards for one queue. Offsets count bytes since the start and never wrap;
    /// positions are offsets within the lane's storage.
    @usableFromInline
    struct Lane {
        let storage: UnsafeMutableRawPointer
        /// The oldest record not yet written.
        var head = 0
        var headPosition = 0
        /// The end of what the queue committed.
        var published = 0
        var publishedPosition = 0
        /// The latest timestamp the queue committed, and whether it committed any.
        var newest: UInt64 = 0
        var delivered = false
        var lastCommit: UInt64
    }

    /// One queue's way in: owned by the thread that captures (or works) that queue, one at a time
    /// per queue; it copies packets into the lane without a lock until `commit`.
    public struct Appender {
        public let queue: Int
        @usableFromInline let owner: TimeOrderedWriter
        @usableFromInline let storage: UnsafeMutableRawPointer
        @usableFromInline let capacity: Int
        @usableFromInline var tail: Int
        @usableFromInline var position: Int
        /// How far `tail` may go: the lane's head as last seen, plus its capacity. The head only
        /// moves forward, so a stale limit is a safe one.
        @usableFromInline var end: Int
        /// The latest timestamp appended.
        @usableFromInline var newest: UInt64 = 0

        init(queue: Int, owner: TimeOrderedWriter, lane: Lane) {
            self.queue = queue
            self.owner = owner
            storage = lane.storage
            capacity = owner.laneBytes
            tail = lane.published
            position = lane.publishedPosition
            end = lane.head + owner.laneBytes
        }

        /// Copies a borrowed packet in. No lock, no allocation, unless the lane is full.
        @inlinable @inline(__always)
        public mutating func append(_ packet: Packet) {
            append(bytes: packet.bytes, wireLength: packet.wireLength, timestamp: packet.timestampNanoseconds)
        }

        @inlinable @inline(__always)
        public mutating func append(bytes: UnsafeRawBufferPointer, wireLength: Int, timestamp: UInt64) {
            let length = TimeOrderedWriter.recordBytes(captured: bytes.count)
            let wraps = position + length > capacity
            let needed = wraps ? length + capacity - position : length
            if tail + needed > end { owner.makeRoom(&self, needed: needed) }
            if wraps {
                (storage + position).storeBytes(of: TimeOrderedWriter.wrapMarker, toByteOffset: 8, as: UInt32.self)
                tail += capacity - position
                position = 0
            }
            let record = storage + position
            record.storeBytes(of: timestamp, as: UInt64.self)
            record.storeBytes(of: UInt32(truncatingIfNeeded: bytes.count), toByteOffset: 8, as: UInt32.self)
            record.storeBytes(of: UInt32(truncatingIfNeeded: wireLength), toByteOffset: 12, as: UInt32.self)
            if let base = bytes.baseAddress { (record + TimeOrderedWriter.headerBytes).copyMemory(from: base, byteCount: bytes.count) }
            tail += length
            position += length
            if position == capacity { position = 0 }
            if timestamp > newest { newest = timestamp }
        }
    }

    /// The appender of `queue`. Make a new one only after the previous one's last commit (with
    /// --reconnect: the next engine's thread for the same queue).
    public func appender(queue: Int) -> Appender {
        precondition(queue >= 0 && queue < queues, "queue \(queue) of \(queues)")
        let lane = merge.withLock { $0.lanes[queue] }
        return Appender(queue: queue, owner: self, lane: lane)
    }

    /// Publishes what `appender` appended since its last commit and writes what is now in order.
    /// Takes the lock once. Returns whether the limit is reached.
    @discardableResult
    public func commit(_ appender: inout Appender, now: UInt64) -> Bool {
        merge.withLock { merge in
            merge.publish(&appender)
            merge.lanes[appender.queue].lastCommit = now
            merge.writeInOrder(through: merge.watermark(now: now))
            // Room for the next batch without the lock.
            merge.makeRoom(&appender, needed: laneBytes / 2)
            return merge.reached
        }
    }

    /// Writes what waited only for queues that have now been quiet for the window: call it now
    /// and then (`wirecap capture` does every 100 ms), since a quiet queue commits nothing.
    @discardableResult
    public func expire(now: UInt64) -> Bool {
        merge.withLock { merge in
            merge.writeInOrder(through: merge.watermark(now: now))
            return merge.reached
        }
    }

    /// Writes everything held, in order. Call once every appender has made its last commit.
    public func finish() {
        merge.withLock { $0.writeInOrder(through: .max) }
    }

    /// Packets written so far (at most `limit`).
    public var written: UInt64 { merge.withLock { $0.written } }
    /// Packets written after a later one: their queue fell more than the window behind.
    public var late: UInt64 { merge.withLock { $0.late } }
    public var limitReached: Bool { merge.withLock { $0.reached } }

    /// The packets' clock, CLOCK_REALTIME in nanoseconds: what `now` means everywhere here.
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// The appender's lane is full: publishes what it holds and writes the oldest held packets
    /// until `needed` bytes are free. Not per packet: a commit leaves half the lane free.
    @usableFromInline @inline(never)
    func makeRoom(_ appender: inout Appender, needed: Int) {
        precondition(needed <= laneBytes, "a record of \(needed) bytes in a lane of \(laneBytes)")
        merge.withLock { merge in
            merge.publish(&appender)
            merge.makeRoom(&appender, needed: needed)
        }
    }
}

/// What the lock guards: the lanes' shared side (what was committed, what was written), the
/// writer and the counts.
private struct Merge: @unchecked Sendable {
    // @unchecked: lives inside a Mutex; the pointer and the writer are used only there.
    let writer: SavefileWriter
    let lanes: UnsafeMutablePointer<TimeOrderedWriter.Lane>
    let queues: Int
    let laneBytes: Int
    let window: UInt64
    let limit: UInt64?
    var written: UInt64 = 0
    var late: UInt64 = 0
    var newestWritten: UInt64 = 0

    var reached: Bool { limit.map { written >= $0 } ?? false }

    func publish(_ appender: inout TimeOrderedWriter.Appender) {
        let q = appender.queue
        if appender.tail != lanes[q].published {
            lanes[q].published = appender.tail
            lanes[q].publishedPosition = appender.position
            lanes[q].newest = max(lanes[q].newest, appender.newest)
            lanes[q].delivered = true
        }
    }

    /// Writes the oldest held packets, in order, until the appender's lane has `needed` bytes
    /// free, and tells the appender how far it may go.
    mutating func makeRoom(_ appender: inout TimeOrderedWriter.Appender, needed: Int) {
        let q = appender.queue
        while laneBytes - (lanes[q].published - lanes[q].head) < needed { writeOldest() }
        appender.end = lanes[q].head + laneBytes
    }

    /// The latest time up to which no queue can still deliver a packet: the least, over the
    /// queues, of the latest each committed, or for a queue quiet for the window, of the window's
    /// start if later.
    func watermark(now: UInt64) -> UInt64 {
        let windowStart = now > window ? now - window : 0
        var mark = UInt64.max
        for q in 0..<queues {
            let lane = lanes[q]
            let newest = lane.delivered ? lane.newest : 0
            let quiet = now > lane.lastCommit && now - lane.lastCommit >= window
            mark = min(mark, quiet ? max(newest, windowStart) : newest)
        }
        return mark
    }

    /// The timestamp of the lane's oldest held record, stepping over a wrap marker; nil if none.
    func headTimestamp(_ q: Int) -> UInt64? {
        while lanes[q].head < lanes[q].published {
            let record = lanes[q].storage + lanes[q].headPosition
            if record.load(fromByteOffset: 8, as: UInt32.self) == TimeOrderedWriter.wrapMarker {
                lanes[q].head += laneBytes - lanes[q].headPosition
                lanes[q].headPosition = 0
                continue
            }
            return record.load(as: UInt64.self)
        }
        return nil
    }

    /// A k-way merge: the lane with the oldest head writes while its head is no later than the
    /// next lane's and `mark`. A scan of the lanes per run of one lane, not per packet.
    mutating func writeInOrder(through mark: UInt64) {
        while true {
            var first = -1
            var oldest = UInt64.max
            var second = UInt64.max
            for q in 0..<queues {
                guard let time = headTimestamp(q) else { continue }
                if first < 0 || time < oldest {
                    second = min(second, oldest)
                    first = q
                    oldest = time
                } else {
                    second = min(second, time)
                }
            }
            guard first >= 0, oldest <= mark else { return }
            let through = min(mark, second)
            while let time = headTimestamp(first), time <= through { writeHead(first) }
        }
    }

    /// Writes the oldest held record of all lanes, the order kept: to make room.
    mutating func writeOldest() {
        var first = -1
        var oldest = UInt64.max
        for q in 0..<queues {
            if let time = headTimestamp(q), first < 0 || time < oldest {
                first = q
                oldest = time
            }
        }
        if first >= 0 { writeHead(first) }
    }

    /// Writes the lane's head record (a wrap marker already stepped over) and moves past it; past
    /// the limit, only moves past it.
    mutating func writeHead(_ q: Int) {
        let record = lanes[q].storage + lanes[q].headPosition
        let time = record.load(as: UInt64.self)
        let captured = Int(record.load(fromByteOffset: 8, as: UInt32.self))
        if !reached {
            if time < newestWritten { late += 1 }
            newestWritten = max(newestWritten, time)
            writer.write(
                bytes: UnsafeRawBufferPointer(start: record + TimeOrderedWriter.headerBytes, count: captured),
                wireLength: Int(record.load(fromByteOffset: 12, as: UInt32.self)),
                seconds: Int(time / 1_000_000_000), nanoseconds: Int(time % 1_000_000_000))
            written += 1
        }
        let length = TimeOrderedWriter.recordBytes(captured: captured)
        lanes[q].head += length
        lanes[q].headPosition += length
        if lanes[q].headPosition == laneBytes { lanes[q].headPosition = 0 }
    }
}
