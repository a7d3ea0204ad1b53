#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine
import WirecapLinux

/// The forwarder's per-packet path without a capture or threads, for the benchmarks: they live
/// in a package of their own and cannot see this module's internal types, yet must measure
/// exactly what a forwarding thread runs. One `ForwardingWalk` over one queue's real `TxRing`
/// walks blocks the caller built (the engine's `SyntheticBlock`), in order as a forwarding thread
/// walks a lease whose turn it holds, or deferred as it walks a chunk that waits for its turn.
/// Nothing here is the forwarder's logic; every call is `ForwardingWalk`'s own. Use from one
/// thread.
@_spi(Harness)
public final class ForwardHarness<H: VerdictHandler> {
    @usableFromInline let queue: ForwardQueue
    @usableFromInline var walk: ForwardingWalk<H>
    /// The snap length chunks are walked with (the engine's largest).
    @usableFromInline static var snapLength: Int { 65_535 }

    /// Opens a TX ring on `interface` as `Forwarder` does (`transmitFrames` frames, the qdisc
    /// bypassed), in `network` if given, and a walk over it with `handler`.
    public init(interface: String, handler: H, transmitFrames: Int = 4096, in network: PrivateNetwork? = nil) throws {
        let open = { () throws(CaptureError) -> TxRing in try TxRing(interface: interface, frames: transmitFrames) }
        let ring = try network.map { try $0.run(open) } ?? open()
        queue = ForwardQueue(index: 0, main: ring, others: [], tap: nil, poolChunks: 1, stallNanoseconds: 5_000_000_000)
        walk = ForwardingWalk(handler: handler, rings: queue, stallNanoseconds: queue.stallNanoseconds)
    }

    /// One chunk in order, as `ForwardingThread.forward` walks a lease whose turn it holds
    /// (`lease.walk(&walk)`): each frame's verdict, checks and copy into a TX slot (waiting for
    /// a slot when the ring is full), then `blockDone`: one kick and a reclaim. Returns the
    /// block's packets.
    @inlinable
    public func forward(block: UnsafeMutableRawPointer) -> Int {
        BlockWalk.walk(block: block, queue: 0, snapLength: Self.snapLength, reinsertVLAN: true, handler: &walk)
    }

    /// One chunk deferred, as a chunk that waited for its turn: the deciding pass (`decideOnly`:
    /// verdicts and checks, outcomes noted in the headers), then the sending pass
    /// (`transmitNoted`: the noted frames put, one kick). Returns the frames it tried to send.
    @inlinable
    public func forwardDeferred(block: UnsafeMutableRawPointer) -> Int {
        _ = walk.decideOnly(block: block, queue: 0, snapLength: Self.snapLength)
        return Int(walk.transmitNoted(block: block))
    }

    /// Only the deciding pass of a deferred chunk: nothing is put or sent. Returns the frames
    /// noted for sending.
    @inlinable
    public func decideOnly(block: UnsafeMutableRawPointer) -> Int {
        Int(walk.decideOnly(block: block, queue: 0, snapLength: Self.snapLength))
    }

    /// The walk's counts so far, and the ring's.
    public var counts: Counts {
        let t = walk.tally
        return Counts(
            put: t.put, forwarded: t.forwarded, verdictDrops: t.verdictDrops, tooBig: t.tooBig,
            txRingFullWaits: t.txRingFullWaits, txErrors: t.txErrors, inFlight: walk.inFlight, busyKicks: queue.main.busyKicks)
    }

    /// Sends what the ring holds and waits until the kernel took it back.
    public func finish() { walk.finish() }

    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public var put: UInt64
        public var forwarded: UInt64
        public var verdictDrops: UInt64
        public var tooBig: UInt64
        public var txRingFullWaits: UInt64
        public var txErrors: UInt64
        public var inFlight: Int
        public var busyKicks: Int

        public var description: String {
            "put \(put), forwarded \(forwarded), verdict drops \(verdictDrops), too big \(tooBig), "
                + "TX ring full waits \(txRingFullWaits), TX errors \(txErrors), in flight \(inFlight), busy kicks \(busyKicks)"
        }
    }
}

/// A network namespace of the process's own, for a benchmark that needs an interface and must
/// change nothing outside itself: `init` moves the calling thread into a new namespace
/// (`unshare(CLONE_NEWNET)`, root only) and leaves it there, so the programs that thread starts
/// (`ip link add ...`) make their interfaces in it; `run` enters it from any thread. The
/// namespace goes away with the process.
@_spi(Harness)
public final class PrivateNetwork: Sendable {
    let namespace: NetworkNamespace

    public init() throws {
        guard CWirecapLinux_unshare_net() == 0 else {
            throw SystemError(Errno(rawValue: errno), operation: "unshare(CLONE_NEWNET)")
        }
        namespace = try NetworkNamespace.current()
    }

    /// Runs `body` on the calling thread switched into the namespace, then switches it back.
    public func run<T, E: Error>(_ body: () throws(E) -> T) throws -> T { try namespace.run(body) }
}
