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
        let ring = self.ring
        var failed: CaptureError? = nil
        let left = counting {
            if ring.inFlight > 0 {
                do throws(CaptureError) { try ring.kick() } catch { failed = error }
            }
            ring.reclaim()
        }
        if let failed { failure = failure ?? failed }
        return left
    }

    /// Waits for a free TX slot (the ring's own wait: kick, reclaim, yield, then sleep, a stall
    /// after `stallNanoseconds`); false when the output failed.
    @usableFromInline
    mutating func waitForRoom() -> Bool {
        if failure != nil { return false }
        tally.txRingFullWaits += 1
        let ring = self.ring
        let stall = stallNanoseconds
        var failed: CaptureError? = nil
        counting {
            do throws(CaptureError) { try ring.serviceUntil(stallNanoseconds: stall) { ring.hasRoom } } catch { failed = error }
        }
        if let failed { failure = failure ?? failed }
        return ring.hasRoom
    }

    /// Runs `body` (nothing is put meanwhile) and counts the frames that left the ring: those the
    /// kernel sent as forwarded, those it refused as TX errors. Returns how many left.
    @inlinable @discardableResult
    mutating func counting(_ body: () -> Void) -> Int {
        let sentBefore = ring.sent
        let waitingBefore = ring.inFlight
        body()
        let left = waitingBefore - ring.inFlight
        let sent = ring.sent - sentBefore
        tally.forwarded += UInt64(sent)
        tally.txErrors += UInt64(left - sent)
        return left
    }
}
