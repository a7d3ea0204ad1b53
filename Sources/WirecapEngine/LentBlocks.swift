#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Synchronization
import WirecapLinux

/// Pool mode's zero-copy half, WireCAP's "chunks are the ring's own descriptors": one queue's
/// ring blocks lent to consumers in place, as chunks, instead of copied into the pool.
///
/// The capture thread lends a retired block only while lending is safe for the ring and cheap
/// for the pool (`mayLend`): few blocks are out on loan, the queue's consumer has almost no
/// backlog (a block lent behind a long queue would hold ring memory for as long as the queue
/// takes), and the kernel leaves at least half the ring free. Otherwise the block is
/// copied into a pool chunk and given back at once, as before. A lent block reserves a pool
/// chunk too, so that a handler that keeps it (`ChunkLease.keep()`) gets its copy without
/// waiting, and a burst finds the pool exactly as full as with copies.
///
/// The block goes back to the kernel when its lease ends (`giveBack`), in whatever order leases
/// end: the kernel only ever checks the one block it moves to next. The capture thread never
/// takes a lent block again: it marks it (`CWirecapLinux_BLOCK_STATUS_LENT`) and waits at it
/// when it comes round the ring, woken by `returned`. It sleeps in epoll with the ring
/// edge-triggered (`RingSleeper`): poll(2) reports a ring readable while the block before the
/// kernel's is held, so a lent block would wake a poll at once, again and again.
///
/// The limit: a handler that holds one block while the kernel fills every other block of the
/// ring makes the kernel reach it and freeze (capture drops). The capture thread sees that
/// happen (it comes round to the lent block), counts it in `heldBlockReached`, and stops lending
/// until every loan is back; the ring's `blockCount - limit` other blocks are the margin.
@usableFromInline
package final class LentBlocks: @unchecked Sendable {
    // @unchecked: the memory is the ring's; a block is touched by the capture thread until it
    // is lent and by the lease's holder until it goes back, one at a time.
    /// The ring's memory; `owner` keeps it mapped while any lease may point into it.
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let blockSize: Int
    @usableFromInline let blockCount: Int
    private let owner: AnyObject & Sendable
    /// At most this many blocks out on loan at once, and lent only while the consumer's backlog
    /// is at most this: a quarter of the ring, and no more than 8 blocks.
    @usableFromInline let limit: Int
    /// Blocks out on loan now.
    @usableFromInline let outstanding = Atomic<Int>(0)
    /// Chunks made as loans, ever; chunks made as copies by the capture thread; loans copied
    /// later (a handler kept the chunk, a reader moved it out of the ring, or the capture thread
    /// reclaimed a waiting loan behind a backlog or because the kernel came near it).
    @usableFromInline let lent = Atomic<UInt64>(0)
    @usableFromInline let copiedAtCapture = Atomic<UInt64>(0)
    @usableFromInline let copiedLater = Atomic<UInt64>(0)
    /// Times the capture thread came round the ring to a block still out on loan.
    @usableFromInline let heldBlockReached = Atomic<UInt64>(0)
    /// Set when the capture thread came round to a block still out on loan; lending resumes once
    /// every loan is back. Touched only by the capture thread.
    @usableFromInline let suspended = Atomic<Bool>(false)
    /// Set for good when the capture thread cannot sleep edge-triggered (no epoll): no loans.
    @usableFromInline let disabled = Atomic<Bool>(false)
    /// Up while the capture thread waits at a lent block: only then does a return signal it.
    @usableFromInline let captureWaiting = Atomic<Bool>(false)
    /// Signalled when a loan ends while the capture thread waits at a lent block (`captureWaiting`).
    @usableFromInline let returned: EventFD

    /// - Parameter owner: what keeps `base` mapped (the `RxRing`, or a test's memory).
    package init(
        base: UnsafeMutableRawPointer, blockSize: Int, blockCount: Int, owner: AnyObject & Sendable
    ) throws(SystemError) {
        self.base = base
        self.blockSize = blockSize
        self.blockCount = blockCount
        self.owner = owner
        limit = min(8, blockCount / 4)
        returned = try EventFD()
    }

    @inlinable @inline(__always)
    func block(_ index: Int) -> UnsafeMutableRawPointer { base + index &* blockSize }

    /// Whether the capture thread may lend the block in hand: loans are below the limit, the
    /// consumer's backlog after the last push was at most the limit, and the kernel keeps at
    /// least half the ring free: `readyAfter` retired blocks wait behind the one in hand (the
    /// kernel is ahead of the capture thread), and with the loans they must stay under half.
    @inlinable
    func mayLend(backlog: Int, readyAfter: Int) -> Bool {
        let out = outstanding.load(ordering: .relaxed)
        if disabled.load(ordering: .relaxed) { return false }
        if suspended.load(ordering: .relaxed) {
            guard out == 0 else { return false }
            suspended.store(false, ordering: .relaxed)
        }
        return out < limit && backlog <= limit && readyAfter + out < blockCount / 2
    }

    @inlinable
    func noteCopiedAtCapture() { copiedAtCapture.add(1, ordering: .relaxed) }

    @usableFromInline
    func noteCopiedLater() { copiedLater.add(1, ordering: .relaxed) }

    /// Whether any block is out on loan now.
    @inlinable
    var anyOut: Bool { outstanding.load(ordering: .relaxed) > 0 }

    /// Capture thread: lend no more, ever.
    @usableFromInline
    func disable() { disabled.store(true, ordering: .relaxed) }

    /// Capture thread: lend no more until every loan is back.
    @usableFromInline
    func suspend() { suspended.store(true, ordering: .relaxed) }

    /// Capture thread: marks block `index` as lent (it stays TP_STATUS_USER for the kernel).
    @inlinable
    func markLent(_ index: Int) {
        outstanding.add(1, ordering: .relaxed)
        lent.add(1, ordering: .relaxed)
        CWirecapLinux_block_mark_lent(block(index))
    }

    /// The end of a loan, from any thread: the block's packet count is zeroed (so the ring's own
    /// count, `RxRing.packetsHeld`, finds none once it is back) and the block goes back to the
    /// kernel; then the capture thread is woken in case it waits at this block.
    @usableFromInline
    func giveBack(_ index: Int) {
        let block = block(index)
        block.storeBytes(of: 0, toByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        CWirecapLinux_block_release(block)
        outstanding.subtract(1, ordering: .releasing)
        if captureWaiting.load(ordering: .sequentiallyConsistent) { returned.signal() }
    }

    /// The work thread found the capture thread awake at the ring, or may not take the block it
    /// was woken for: the capture thread must look at the ring again before it sleeps (the
    /// work thread took the wake-up that would have woken it: `RingCursor`).
    @usableFromInline
    func kickCapture() { returned.signal() }

    /// Whether a block status says the block is out on loan.
    @inlinable @inline(__always)
    static func isLent(_ status: UInt32) -> Bool { status & UInt32(CWirecapLinux_BLOCK_STATUS_LENT) != 0 }

    package struct Snapshot: Sendable, Equatable {
        package var lent: UInt64
        package var copiedAtCapture: UInt64
        package var copiedLater: UInt64
        package var outstanding: Int
        package var heldBlockReached: UInt64
    }

    package func snapshot() -> Snapshot {
        Snapshot(
            lent: lent.load(ordering: .relaxed), copiedAtCapture: copiedAtCapture.load(ordering: .relaxed),
            copiedLater: copiedLater.load(ordering: .relaxed), outstanding: outstanding.load(ordering: .acquiring),
            heldBlockReached: heldBlockReached.load(ordering: .relaxed))
    }
}
