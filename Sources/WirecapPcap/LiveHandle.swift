#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Foundation
import Synchronization
import WirecapEngine
import WirecapSandbox

/// pcap_open_live over the wirecap engine: N fanout queues with the ring-buffer pool (and, if
/// asked, buddy offloading), read the libpcap way, by calling `dispatch` or `loop` on one thread.
///
/// The capture threads copy each retired block into a chunk; `dispatch` pulls filled chunks from
/// the queues in turn and walks them with the handler, so the application's thread is the work
/// thread. A filter is compiled by libpcap and runs in the kernel on every queue. Like a pcap_t,
/// one handle is used by one thread at a time, except `breakLoop()`, which any thread (or a
/// signal handler's flag check) may call.
public final class LivePcapHandle: @unchecked Sendable {
    // @unchecked: `cursor` and `rotation` belong to the reading thread; the rest is
    // immutable or atomic.
    public struct Options: Sendable {
        public var snapLength = 262_144
        public var promiscuous = true
        /// How long `dispatch` waits for the first packet, as pcap_set_timeout.
        public var timeoutMilliseconds = 1000
        /// Kernel ring bytes per queue, as pcap_set_buffer_size.
        public var bufferSize = 4 << 20
        /// Hand packets over as soon as they arrive (1 ms block timeout) rather than in batches.
        public var immediate = false
        public var queues = 1
        public var fanout: FanoutMode = .hash
        /// Chunks per queue of the ring-buffer pool.
        public var poolChunks = 64
        public var offloadThreshold: Double? = nil
        /// A filter expression in tcpdump's syntax, run by the kernel.
        public var filter: String? = nil

        public init() {}
    }

    public let device: String
    public let options: Options
    let engine: CaptureEngine
    private var cursor: (queue: Int, chunk: FilledChunk, next: Int)? = nil
    private var rotation = 0
    private let breaking = Atomic<Bool>(false)
    /// Opened with the handle, in the namespace of the thread that opened it.
    private let sender: FrameSender
    private let closed = Atomic<Bool>(false)

    /// Opens `device` (in the calling thread's network namespace) and starts capturing.
    public static func openLive(device: String, options: Options = Options()) throws(PcapError) -> LivePcapHandle {
        let snap = options.snapLength
        // A block holds one full snap-length packet; the ring is the asked-for buffer size.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let minimum = (CaptureConfiguration.minimumBlockSize(snapLength: snap) + page - 1) / page * page
        var block = 1 << 16
        while block < minimum { block <<= 1 }
        let geometry = RingGeometry(
            blockSize: block, blockCount: max(2, options.bufferSize / block),
            blockTimeoutMilliseconds: options.immediate ? 1 : min(max(options.timeoutMilliseconds, 1), 8))
        var configuration = CaptureConfiguration(
            interface: device, queues: options.queues, fanout: options.fanout, ring: geometry, snapLength: snap,
            promiscuous: options.promiscuous, pool: PoolConfiguration(chunks: options.poolChunks),
            offload: options.offloadThreshold.map { OffloadConfiguration(threshold: $0) })
        if let filter = options.filter { configuration.filter = try BPFCompiler.compile(filter, snapLength: snap) }
        do {
            let engine = try CaptureEngine(configuration: configuration)
            let sender = try FrameSender(interface: device)
            try engine.startCaptureOnly()
            return LivePcapHandle(device: device, options: options, engine: engine, sender: sender)
        } catch {
            throw PcapError("\(error)")
        }
    }

    init(device: String, options: Options, engine: CaptureEngine, sender: FrameSender) {
        self.device = device
        self.options = options
        self.engine = engine
        self.sender = sender
    }

    deinit { close() }

    /// DLT_EN10MB: the engine captures Ethernet (and loopback, which libpcap also calls Ethernet).
    public var datalink: Int32 { 1 }
    public var snapshot: Int { options.snapLength }

    private func checkOpen() throws(PcapError) {
        if closed.load(ordering: .acquiring) { throw PcapError.closed }
    }

    /// Processes up to `count` packets (all that are there when `count` <= 0), waiting up to the
    /// timeout for the first; 0 on time-out, as pcap_dispatch.
    public func dispatch<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        try checkOpen()
        let limit = count <= 0 ? Int.max : count
        var processed = 0
        let deadline = CWirecapLinux_monotonic_ns() + UInt64(options.timeoutMilliseconds) * 1_000_000
        while processed < limit {
            if breaking.exchange(false, ordering: .acquiringAndReleasing) {
                return LoopResult(processed: processed, interrupted: true)
            }
            if cursor == nil {
                cursor = takeChunk(waiting: processed == 0 && CWirecapLinux_monotonic_ns() < deadline)
                if cursor == nil {
                    if processed > 0 || CWirecapLinux_monotonic_ns() >= deadline { break }
                    continue
                }
            }
            let (queue, chunk, next) = cursor!
            let group = engine.queues[queue].group!
            let memory = group.pools[Int(chunk.owner)]!.address(of: Int(chunk.index))
            let delivered = BlockWalk.walk(
                block: memory, queue: Int(chunk.owner), snapLength: options.snapLength, first: next, limit: limit - processed, handler: &handler)
            processed += delivered
            if next + delivered >= Int(chunk.packets) {
                group.processed(chunk, by: queue)
                group.pools[Int(chunk.owner)]!.recycle(Int(chunk.index))
                cursor = nil
            } else {
                cursor = (queue, chunk, next + delivered)
            }
        }
        handler.blockDone(queue: 0)
        return LoopResult(processed: processed, interrupted: false)
    }

    /// A filled chunk from the next queue that has one; with `waiting`, waits in 1 ms steps.
    private func takeChunk(waiting: Bool) -> (queue: Int, chunk: FilledChunk, next: Int)? {
        let queues = engine.queues.count
        for step in 0..<queues {
            let q = (rotation + step) % queues
            if let chunk = engine.queues[q].group!.pop(for: q, waitingUpTo: 0) {
                rotation = (q + 1) % queues
                return (q, chunk, 0)
            }
        }
        if waiting, let chunk = engine.queues[rotation].group!.pop(for: rotation, waitingUpTo: 1_000_000) {
            return (rotation, chunk, 0)
        }
        return nil
    }

    public func dispatch(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try withoutActuallyEscaping(handler) { handler throws(PcapError) in
            var closure = ClosureHandler(body: handler)
            return try dispatch(count: count, handler: &closure)
        }
    }

    /// Processes packets until `count` have been (forever when `count` <= 0) or `breakLoop()`.
    public func loop<H: PacketHandler>(count: Int = -1, handler: inout H) throws(PcapError) -> LoopResult {
        var processed = 0
        while count <= 0 || processed < count {
            let result = try dispatch(count: count <= 0 ? -1 : count - processed, handler: &handler)
            processed += result.processed
            if result.interrupted { return LoopResult(processed: processed, interrupted: true) }
        }
        return LoopResult(processed: processed, interrupted: false)
    }

    public func loop(count: Int = -1, handler: (Packet) -> Void) throws(PcapError) -> LoopResult {
        try withoutActuallyEscaping(handler) { handler throws(PcapError) in
            var closure = ClosureHandler(body: handler)
            return try loop(count: count, handler: &closure)
        }
    }

    /// The next packet as an owned copy, or nil on time-out (pcap_next).
    public func next() throws(PcapError) -> OwnedPacket? {
        var copy: OwnedPacket? = nil
        _ = try dispatch(count: 1) { packet in
            copy = OwnedPacket(
                bytes: Array(packet.bytes), len: packet.wireLength, seconds: Int(packet.seconds), fraction: Int(packet.nanoseconds),
                precision: .nano)
        }
        return copy
    }

    /// Makes a running `loop` or `dispatch` return, from any thread.
    public func breakLoop() {
        breaking.store(true, ordering: .releasing)
        for queue in engine.queues { queue.group?.wake() }
    }

    /// libpcap's meaning: `received` counts what passed the filter, drops included; `dropped` what
    /// the rings had no room for (and anything lost inside the library); interface drops are not
    /// read (0). Counters wrap at 32 bits, as pcap_stat's do; the engine's 64-bit ones are in
    /// `engineStatistics()`.
    public func stats() throws(PcapError) -> PcapStatistics {
        try checkOpen()
        let s = engine.statistics()
        return PcapStatistics(
            received: UInt32(truncatingIfNeeded: s.offered), dropped: UInt32(truncatingIfNeeded: s.captureDrops + s.deliveryDrops),
            interfaceDropped: 0)
    }

    public func engineStatistics() -> CaptureStatistics { engine.statistics() }

    /// Sends a frame on the device, as pcap_inject; returns the bytes sent.
    @discardableResult
    public func inject(_ frame: [UInt8]) throws(PcapError) -> Int {
        try checkOpen()
        if let refusal = frame.withUnsafeBytes({ sender.send($0) }) {
            throw PcapError("the kernel refused a \(frame.count)-byte frame on \(device): \(refusal.rawValue)")
        }
        return frame.count
    }

    /// Whether every capture thread has drained its ring and finished.
    private func allCaptureThreadsDone() -> Bool {
        engine.queues.allSatisfy { $0.group?.capturesFinished ?? true }
    }

    /// Stops the capture threads (after draining) and releases the rings. Idempotent.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        engine.requestStop()
        // The capture threads may wait for chunks while draining: give every chunk back.
        if let cursor {
            let group = engine.queues[cursor.queue].group!
            group.processed(cursor.chunk, by: cursor.queue)
            group.pools[Int(cursor.chunk.owner)]!.recycle(Int(cursor.chunk.index))
            self.cursor = nil
        }
        // Chunks nobody read are discarded, as pcap_close discards what is left in the ring; the
        // statistics are gone with the handle.
        while engine.queues.contains(where: { q in (q.group?.backlog(of: q.index) ?? 0) > 0 }) || !allCaptureThreadsDone() {
            for q in engine.queues {
                while let chunk = q.group!.pop(for: q.index, waitingUpTo: 1_000_000) {
                    q.group!.processed(chunk, by: q.index)
                    q.group!.pools[Int(chunk.owner)]!.recycle(Int(chunk.index))
                }
            }
        }
        engine.wait()
    }
}

/// Runs a closure per packet.
struct ClosureHandler: PacketHandler {
    let body: (Packet) -> Void
    @inline(__always) mutating func handle(_ packet: Packet) { body(packet) }
}


extension LivePcapHandle {
    /// The packets as owned copies, for `for try await` code. A reading thread runs `loop` and
    /// hands copies over; ending the iteration breaks the loop. Copies allocate: this is the
    /// convenient path, `dispatch` and `loop` are the fast one.
    public func packets() -> AsyncThrowingStream<OwnedPacket, any Error> {
        AsyncThrowingStream { continuation in
            let thread = Thread { [self] in
                do {
                    _ = try self.loop { packet in
                        continuation.yield(
                            OwnedPacket(
                                bytes: Array(packet.bytes), len: packet.wireLength, seconds: Int(packet.seconds),
                                fraction: Int(packet.nanoseconds), precision: .nano))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [self] _ in self.breakLoop() }
            thread.start()
        }
    }
}
