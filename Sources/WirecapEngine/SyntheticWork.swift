#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import Synchronization

/// The processing-load knob of the experiments: X ns of work per packet.
package struct SyntheticWork: Sendable, Equatable {
    package enum Mode: String, CaseIterable, Sendable {
        /// Burns X ns of CPU per packet, like a real IDS.
        case spin
        /// Holds the worker for n * X ns per batch (block or chunk) without using CPU: emulates a
        /// machine with more cores than this one, where work threads do not compete with the
        /// kernel's receive path and the capture threads.
        case sleep
    }

    package var nanosecondsPerPacket: Int
    package var mode: Mode
    /// Spin-loop iterations per nanosecond on this machine, measured once.
    @usableFromInline let iterationsPerNanosecond: Double

    package init(nanosecondsPerPacket: Int, mode: Mode) {
        self.nanosecondsPerPacket = nanosecondsPerPacket
        self.mode = mode
        iterationsPerNanosecond = mode == .spin && nanosecondsPerPacket > 0 ? Self.calibration : 0
    }

    /// Measured over about 20 ms, best of three, so that a preempted run does not count.
    static let calibration: Double = {
        var best = 0.0
        for _ in 0..<3 {
            let iterations = 4_000_000
            let start = CWirecapLinux_monotonic_ns()
            spin(iterations)
            let elapsed = Double(CWirecapLinux_monotonic_ns() - start)
            best = max(best, Double(iterations) / max(elapsed, 1))
        }
        return best
    }()

    /// A dependent multiply-add chain: its speed is the latency of the chain, steady across runs.
    @usableFromInline @inline(never)
    static func spin(_ iterations: Int) {
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<iterations { x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
        // A relaxed store keeps the chain from being optimised away; one store per call.
        spinSink.store(x, ordering: .relaxed)
    }

    static let spinSink = Atomic<UInt64>(0)

    @inlinable var spinIterations: Int { Int(Double(nanosecondsPerPacket) * iterationsPerNanosecond) }
}

/// Runs the synthetic work around another handler.
package struct WorkingHandler<Inner: PacketHandler>: PacketHandler {
    package var inner: Inner
    @usableFromInline let work: SyntheticWork
    @usableFromInline let iterations: Int
    @usableFromInline var pending = 0

    @inlinable package init(_ inner: Inner, work: SyntheticWork) {
        self.inner = inner
        self.work = work
        iterations = work.spinIterations
    }

    @inlinable
    package mutating func handle(_ packet: Packet) {
        inner.handle(packet)
        if work.nanosecondsPerPacket > 0 {
            if work.mode == .spin { SyntheticWork.spin(iterations) } else { pending &+= 1 }
        }
    }

    @inlinable
    package mutating func blockDone(queue: Int) {
        if pending > 0 {
            let total = pending * work.nanosecondsPerPacket
            pending = 0
            var request = timespec(tv_sec: total / 1_000_000_000, tv_nsec: total % 1_000_000_000)
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        }
        inner.blockDone(queue: queue)
    }
}
