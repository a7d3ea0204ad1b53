#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Synchronization
import WirecapLinux

/// One WireCAP receive queue: a fanout member socket with its ring and its counters; in pool
/// mode its chunks go through the engine's `ChunkExchange`.
///
/// `run` is the capture thread's loop: take the next block in ring order once the kernel has
/// retired it, hand it to the consumer, give it back, and sleep in epoll (`RingSleeper`) when
/// there is nothing to take. On the plain ring blocks go back strictly in ring order and right
/// after the consumer is done, so user space never holds more than the one block in hand; in
/// pool mode lent blocks go back when their leases end (`LentBlocks`). The work thread's loop in
/// pool mode is the engine's (`CaptureEngine.startWorkers`, `WorkThread.swift`), over the
/// exchange's leases; while it has nothing queued it takes blocks itself
/// (`serveWorkThread`, `RingCursor`).
///
/// (WireCAP's *capture queue* is something else: the FIFO of filled chunks waiting for a
/// consumer, `CaptureQueue`.)
@usableFromInline
package final class ReceiveQueue: Sendable {
    @usableFromInline package let index: Int
    @usableFromInline package let cpu: Int?
    @usableFromInline let ring: RxRing
    @usableFromInline let counters: QueueCounters
    @usableFromInline let snapLength: Int
    @usableFromInline let blockTimeoutMilliseconds: Int
    /// Pool mode: how long a stop waits at most for handlers to free a chunk.
    @usableFromInline let stopWaitNanoseconds: UInt64
    /// Pool mode only: where this queue's capture thread puts its chunks.
    @usableFromInline let exchange: ChunkExchange?
    /// Where the ring is read next, by the capture thread or (pool mode with loans, basic mode)
    /// the work thread serving itself.
    @usableFromInline package let cursor = RingCursor()

    init(
        index: Int, cpu: Int?, ring: RxRing, interface: String, snapLength: Int, blockTimeoutMilliseconds: Int,
        stopWaitMilliseconds: Int = 0, exchange: ChunkExchange?
    ) {
        self.stopWaitNanoseconds = UInt64(stopWaitMilliseconds) * 1_000_000
        self.index = index
        self.cpu = cpu
        self.ring = ring
        self.counters = QueueCounters(queue: index, interface: interface)
        self.snapLength = snapLength
        self.blockTimeoutMilliseconds = blockTimeoutMilliseconds
        self.exchange = exchange
    }

    package func statistics() -> QueueStatistics {
        counters.snapshot(ring: ring, exchange: exchange)
    }

    /// The member socket, for `poll`/`select` integration and diagnostics. Owned by the engine.
    package var socketDescriptor: Int32 { ring.fd }

    /// How long a stop waits for the kernel to retire the block it is filling: the retire timer
    /// fires after the block timeout (8 ms when the kernel picks), so twice that plus slack. The
    /// window restarts whenever a block is taken. Waiting for a handler to free a chunk is
    /// bounded separately (`stopWaitNanoseconds`): a handler slower than this window per chunk
    /// used to make a stop leave the rest of the ring behind.
    @usableFromInline var drainWindowNanoseconds: UInt64 {
        UInt64(max(blockTimeoutMilliseconds, 8) * 2 + 100) * 1_000_000
    }

    @inlinable
    package func run<C: BlockConsumer>(consumer: inout C, control: CaptureControl) {
        let statsInterval: UInt64 = 1_000_000_000
        var nextStats = CWirecapLinux_monotonic_coarse_ns() + statsInterval
        cursor.holdForCapture()
        var index = cursor.index
        var taken = cursor.taken
        var blocks = cursor.blocks
        // Once a stop is seen: no new packets may enter (drop-all filter), and we keep taking
        // blocks until everything the kernel accepted has been taken, or the window ends.
        var drainTarget: UInt64? = nil
        var drainDeadline: UInt64 = 0
        var handlerDeadline: UInt64 = 0
        var fds = (
            pollfd(fd: ring.fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: control.wakeFD, events: Int16(POLLIN), revents: 0))
        // Pool mode lends blocks in place: the capture thread must not take a lent block again
        // when it comes round the ring, nor sleep in a poll that a lent block keeps readable.
        let loans = exchange?.loans(of: self.index)
        var waitingAtLoan = false
        // The thread sleeps in epoll with the ring edge-triggered (woken once per retired block):
        // cheaper per sleep than poll(2) on two descriptors, and with loans the only way, since
        // poll finds the ring readable while a lent block precedes the kernel's. Without epoll
        // (it cannot be set up), poll, and no loans.
        let sleeper = RingSleeper(ring: ring.fd, wake: control.wakeFD, resetting: loans?.returned.descriptor)
        if let loans, sleeper == nil { loans.disable() }
        let sleep = sleeper?.descriptors

        while true {
            let block = ring.block(index)
            let status = CWirecapLinux_block_status_acquire(block)
            if let loans, LentBlocks.isLent(status) {
                // Come round to a block still out on loan: the kernel is at it or about to be (a
                // handler held it for a whole turn of the ring). Count it once, lend no more until
                // every loan is back, and wait for this one.
                if !waitingAtLoan {
                    waitingAtLoan = true
                    loans.heldBlockReached.add(1, ordering: .relaxed)
                    loans.suspend()
                }
                // If it still waits for its consumer, it comes back at once as a copy.
                if exchange?.reclaimLoans(of: self.index) ?? 0 > 0 { continue }
                if drainTarget == nil && control.isStopping {
                    drainTarget = beginDrain()
                    drainDeadline = CWirecapLinux_monotonic_ns() + drainWindowNanoseconds
                    handlerDeadline = CWirecapLinux_monotonic_ns() + stopWaitNanoseconds
                }
                if let target = drainTarget, taken >= target || CWirecapLinux_monotonic_ns() >= drainDeadline { break }
                if drainTarget != nil { sleeper?.stopWaking() }
                // The loan's end signals `returned` only while this flag is up: a flag, then a
                // second look at the block, then the sleep, so that no return is missed.
                loans.captureWaiting.store(true, ordering: .sequentiallyConsistent)
                if LentBlocks.isLent(CWirecapLinux_block_status_acquire(block)) { _ = sleeper?.sleep(milliseconds: 10) }
                loans.captureWaiting.store(false, ordering: .relaxed)
                continue
            }
            waitingAtLoan = false
            if status & BlockWalk.statusUser != 0 {
                let packets = UInt64(block.load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self))
                // The walk bounds every packet by the block's used length; this bounds that
                // length by the block's memory, so a corrupted header cannot send it outside.
                if Int(block.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)) > ring.blockSize {
                    block.storeBytes(of: UInt32(ring.blockSize), toByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)
                }
                let readyAfter = loans == nil ? 0 : readyBlocks(after: index, upTo: ring.blockCount / 2)
                let disposition = consumer.consume(block: block, index: index, readyAfter: readyAfter, queue: self.index)
                let consumed = disposition != .notNow
                if !consumed, drainTarget != nil {
                    // A retired block is waiting for a free chunk, i.e. for a handler: not the
                    // retire timer's window but the handlers' bound applies.
                    drainDeadline = max(drainDeadline, min(handlerDeadline, CWirecapLinux_monotonic_ns() + drainWindowNanoseconds))
                }
                if consumed {
                    // The kernel goes on at the block after the ones already retired: if a lent
                    // block lies within a quarter of the ring ahead of it, the loans that still
                    // wait for a consumer become copies, before the kernel can reach them.
                    if let loans, loans.anyOut,
                        lentBlock(near: index + 1 + readyAfter, within: max(1, ring.blockCount / 4))
                    {
                        _ = exchange?.reclaimLoans(of: self.index)
                    }
                    taken &+= packets
                    blocks &+= 1
                    // Counted as taken now: a block given back counts no packets in the ring
                    // (`RxRing.packetsHeld`) until the kernel reopens it and resets the count. A
                    // lent block goes back when its lease ends (`LentBlocks.giveBack`).
                    if disposition == .taken {
                        block.storeBytes(of: 0, toByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
                        CWirecapLinux_block_release(block)
                    }
                    index = index + 1 == ring.blockCount ? 0 : index + 1
                    counters.taken.store(taken, ordering: .releasing)
                    counters.blocks.store(blocks, ordering: .relaxed)
                    if drainTarget != nil { drainDeadline = CWirecapLinux_monotonic_ns() + drainWindowNanoseconds }
                }
                let now = CWirecapLinux_monotonic_coarse_ns()
                if status & BlockWalk.statusLosing != 0 || now >= nextStats {
                    counters.refresh(socket: ring.socket)
                    nextStats = now + statsInterval
                }
                if drainTarget == nil && control.isStopping {
                    drainTarget = beginDrain()
                    drainDeadline = CWirecapLinux_monotonic_ns() + drainWindowNanoseconds
                    handlerDeadline = CWirecapLinux_monotonic_ns() + stopWaitNanoseconds
                }
                if let target = drainTarget, taken >= target || CWirecapLinux_monotonic_ns() >= drainDeadline { break }
                continue
            }
            if drainTarget == nil && control.isStopping {
                drainTarget = beginDrain()
                drainDeadline = CWirecapLinux_monotonic_ns() + drainWindowNanoseconds
                handlerDeadline = CWirecapLinux_monotonic_ns() + stopWaitNanoseconds
            }
            if let target = drainTarget {
                if taken >= target || CWirecapLinux_monotonic_ns() >= drainDeadline { break }
                // Only the ring now: the wake-up fd stays readable after a stop.
                if let sleeper {
                    sleeper.stopWaking()
                    _ = sleeper.sleep(milliseconds: 5)
                } else {
                    fds.0.revents = 0
                    _ = poll(&fds.0, 1, 5)
                }
                continue
            }
            fds.0.revents = 0
            fds.1.revents = 0
            if let sleep {
                // Asleep, this thread lets the work thread take blocks (`RingCursor`); awake again,
                // it goes on from wherever the work thread left the cursor.
                cursor.index = index
                cursor.taken = taken
                cursor.blocks = blocks
                cursor.release()
                // The epoll sleep reports a socket error as poll would: the same handling below.
                if sleep.sleep(milliseconds: 1000) { fds.0.revents = Int16(POLLERR) }
                counters.captureWakeups.add(1, ordering: .relaxed)
                if cursor.ringError.exchange(false, ordering: .acquiringAndReleasing) { fds.0.revents = Int16(POLLERR) }
                cursor.holdForCapture()
                index = cursor.index
                taken = cursor.taken
                blocks = cursor.blocks
            } else {
                withUnsafeMutablePointer(to: &fds) { pair in
                    pair.withMemoryRebound(to: pollfd.self, capacity: 2) { _ = poll($0, 2, 1000) }
                }
            }
            if fds.0.revents & Int16(POLLERR) != 0 { takeSocketError(wake: &fds.1) }
            let now = CWirecapLinux_monotonic_coarse_ns()
            if now >= nextStats {
                counters.refresh(socket: ring.socket)
                nextStats = now + statsInterval
            }
        }
        // `sleep` holds the sleeper's descriptors, not the sleeper: keep it (and its epoll) open
        // to here.
        withExtendedLifetime(sleeper) {}
        counters.refresh(socket: ring.socket)
        counters.recordCaptureCPU(seconds: CWirecapLinux_thread_cpu_seconds())
        counters.captureFinished.store(true, ordering: .releasing)
        exchange?.captureFinished(queue: self.index)
    }

    /// Pool mode with loans, basic mode: the queue's work thread, with nothing waiting for it, takes
    /// the next retired block itself and walks it in place, so that one thread wakes per block
    /// rather than two (`RingCursor`). The block is a loan like any other: a pool chunk is
    /// reserved for it, it goes back when the lease ends, and the capture thread waits at it if
    /// it comes round the ring first.
    ///
    /// nil when there is nothing to take, a stop was asked for, chunks wait in the queue, or the
    /// capture thread is awake at the ring or must take this block itself (no loan allowed now):
    /// then the capture thread is told to look at the ring before it sleeps, since the work
    /// thread may have taken the wake-up meant for it.
    @inlinable
    package func serveWorkThread(control: CaptureControl) -> ChunkLease? {
        guard let exchange, let loans = exchange.loans(of: index), !control.isStopping else { return nil }
        guard cursor.tryHoldForWorkThread() else {
            loans.kickCapture()
            return nil
        }
        defer { cursor.release() }
        let at = cursor.index
        let block = ring.block(at)
        let status = CWirecapLinux_block_status_acquire(block)
        guard status & BlockWalk.statusUser != 0 && !LentBlocks.isLent(status) else { return nil }
        // As the capture thread does: a corrupted used length must not send the walk outside.
        if Int(block.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)) > ring.blockSize {
            block.storeBytes(of: UInt32(ring.blockSize), toByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self)
        }
        let readyAfter = readyBlocks(after: at, upTo: ring.blockCount / 2)
        guard loans.mayLend(backlog: 0, readyAfter: readyAfter),
            let filled = exchange.serve(ringBlock: at, queue: index, sequence: cursor.sequence)
        else {
            loans.kickCapture()
            return nil
        }
        cursor.sequence &+= 1
        cursor.taken &+= UInt64(UInt32(bitPattern: filled.packets))
        cursor.blocks &+= 1
        cursor.index = at + 1 == ring.blockCount ? 0 : at + 1
        counters.servedByWorkThread.add(1, ordering: .relaxed)
        counters.taken.store(cursor.taken, ordering: .releasing)
        counters.blocks.store(cursor.blocks, ordering: .relaxed)
        if status & BlockWalk.statusLosing != 0 { counters.refresh(socket: ring.socket) }
        return ChunkLease(exchange: exchange, filled: filled, queue: index)
    }

    /// The work thread's sleep on the ring reported a socket error: the kernel woke it alone, so
    /// the capture thread is told, and reads and reports the error as if it had seen it itself.
    @usableFromInline
    func passRingError() {
        cursor.ringError.store(true, ordering: .releasing)
        exchange?.loans(of: index)?.kickCapture()
    }

    /// How many blocks after `index` the kernel has retired and the capture thread not yet
    /// taken, counted up to `limit`: the kernel's lead, which the hybrid pool keeps short.
    @usableFromInline
    func readyBlocks(after index: Int, upTo limit: Int) -> Int {
        var count = 0
        var next = index
        while count < limit {
            next = next + 1 == ring.blockCount ? 0 : next + 1
            if next == index { break }
            let status = CWirecapLinux_block_status_acquire(ring.block(next))
            guard status & BlockWalk.statusUser != 0 && !LentBlocks.isLent(status) else { break }
            count += 1
        }
        return count
    }

    /// Whether one of the `count` blocks from `start` on (round the ring) is out on loan.
    @usableFromInline
    func lentBlock(near start: Int, within count: Int) -> Bool {
        for step in 0..<min(count, ring.blockCount) {
            let status = CWirecapLinux_block_status_acquire(ring.block((start + step) % ring.blockCount))
            if LentBlocks.isLent(status) { return true }
        }
        return false
    }

    /// The kernel posted an error on the socket (ENETDOWN when the interface goes down): until
    /// it is read, every `poll` returns at once with POLLERR and the loop would spin a core.
    /// Reading it (SO_ERROR) clears it; it is counted and kept for the statistics, where the
    /// engine's users see that the interface went down. A POLLERR with no error to read would
    /// spin all the same, so the loop then rests 10 ms, waking early only for a stop.
    @usableFromInline
    func takeSocketError(wake: inout pollfd) {
        if let error = try? ring.socket.pendingError() {
            counters.noteSocketError(error)
        } else {
            wake.revents = 0
            _ = poll(&wake, 1, 10)
        }
    }

    /// Shuts the door (drop-all filter) and returns how many packets the kernel has accepted in
    /// all: the drain takes blocks until it has taken that many.
    @usableFromInline
    func beginDrain() -> UInt64 {
        try? ring.setReturnFilter(0)
        counters.refresh(socket: ring.socket)
        return counters.kernelAccepted
    }
}
