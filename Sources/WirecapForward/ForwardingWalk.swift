#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine

/// The per-packet path of one forwarding thread: the verdict, the MTU check, one copy into the
/// queue's TX ring; one kick per chunk (`blockDone`), never a send per packet.
///
/// A full TX ring is waited out, not dropped: the thread keeps its lease meanwhile, the lease
/// keeps a chunk out of the pool, and an empty pool leaves blocks in the RX ring, so a slow
/// output ends as capture drops counted by the kernel, never as a silent loss here.
@usableFromInline
struct ForwardingWalk<H: VerdictHandler>: PacketHandler {
    @usableFromInline var handler: H
    @usableFromInline let ring: TxRing
    /// Counts since the last publish.
    @usableFromInline var tally = ForwardTally()
    /// How long the ring may take no frame back before the output counts as failed.
    @usableFromInline let stallNanoseconds: UInt64
    /// Set once the output failed (the interface went away, or the ring stalled): frames that
    /// find no room are counted as TX errors from then on instead of waiting again.
    @usableFromInline var failure: CaptureError? = nil

    @inlinable
    init(handler: H, ring: TxRing, stallNanoseconds: UInt64) {
        self.handler = handler
        self.ring = ring
        self.stallNanoseconds = stallNanoseconds
    }

    @inlinable
    mutating func handle(_ packet: Packet) {
        guard handler.verdict(ForwardFrame(packet)) == .forward else {
            tally.verdictDrops += 1
            return
        }
        // Checked here because the ring's virtio-net header turns off the kernel's own check
        // (TxRing.init); a frame the capture cut would go out truncated.
        if let refusal = ring.refusal(of: packet.bytes) {
            if refusal == .overMTU { tally.tooBig += 1 } else { tally.txErrors += 1 }
            return
        }
        if packet.bytes.count < packet.wireLength {
            tally.tooBig += 1
            return
        }
        if !ring.hasRoom && !waitForRoom() {
            tally.txErrors += 1
            return
        }
        ring.put(packet.bytes)
        tally.put += 1
    }

    /// One kick per chunk: the kernel sends what this chunk put while the next one is fetched.
    @inlinable
    mutating func blockDone(queue: Int) { service() }

    /// Kicks the ring and takes back what the kernel is done with; returns how many came back.
    @inlinable @discardableResult
    mutating func service() -> Int {
        if ring.unkicked > 0 || ring.inFlight > 0 {
            do throws(CaptureError) { try ring.kick() } catch { failure = failure ?? error }
        }
        let sentBefore = ring.sent
        let done = ring.reclaim()
        let sent = ring.sent - sentBefore
        tally.forwarded += UInt64(sent)
        tally.txErrors += UInt64(done - sent)
        return done
    }

    /// Waits for a free TX slot, kicking and reclaiming; false when the output failed.
    @usableFromInline
    mutating func waitForRoom() -> Bool {
        if failure != nil { return false }
        tally.txRingFullWaits += 1
        var lastProgress = CWirecapLinux_monotonic_ns()
        var idle = 0
        while !ring.hasRoom {
            if service() > 0 {
                lastProgress = CWirecapLinux_monotonic_ns()
                idle = 0
                continue
            }
            if failure != nil { return false }
            idle += 1
            if idle < 64 {
                sched_yield()
            } else {
                usleep(50)
                if CWirecapLinux_monotonic_ns() - lastProgress > stallNanoseconds {
                    failure = .transmitStalled(
                        interface: ring.interface, seconds: stallNanoseconds / 1_000_000_000, waiting: ring.inFlight, lastError: nil)
                    return false
                }
            }
        }
        return true
    }
}
