#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import CWirecapPcap
import Synchronization
import WirecapEngine
import WirecapSandbox

/// The baseline users have today: one libpcap handle on the interface (what pcap_open_live
/// does, with the buffer size set to the ring size the other engines get), read with
/// pcap_dispatch on one thread that runs the same handler and the same synthetic work.
final class LibpcapRun: EngineRun, @unchecked Sendable {
    // @unchecked: `handle` is used by the reading thread, and by `stop` only through
    // pcap_breakloop, which libpcap makes safe from another thread; the rest is immutable or atomic.
    private let handle: OpaquePointer
    private let thread: PinnedThread
    private let context: Context
    private let stopFlag = StopFlag()

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    /// What the C callback reaches through its user pointer.
    final class Context {
        var handler: LabHandler
        let processed = Atomic<UInt64>(0)
        var cpuSeconds = 0.0
        init(handler: LabHandler) { self.handler = handler }
    }

    init(point: ExperimentPoint, sandbox: Sandbox, ledger: SequenceLedger, order: FlowOrder) throws {
        let setup = point.setup
        let interface = sandbox.receiverInterface
        let bufferBytes = setup.blockSize * setup.blockCount
        handle = try sandbox.receiver.run { () throws -> OpaquePointer in
            var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let p = pcap_create(interface, &errbuf) else {
                throw LabError.libpcapOpenFailed(interface: interface, reason: errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
            }
            pcap_set_snaplen(p, Int32(LabDefaults.snapLength))
            pcap_set_promisc(p, 1)
            pcap_set_timeout(p, 8)
            pcap_set_buffer_size(p, Int32(bufferBytes))
            let status = pcap_activate(p)
            if status < 0 {
                let message = String(cString: pcap_geterr(p))
                pcap_close(p)
                throw LabError.libpcapActivateFailed(interface: interface, reason: message)
            }
            return p
        }
        context = Context(handler: point.handler(ledger: ledger, order: order, queue: 0))
        let handle = self.handle
        let context = self.context
        let box = UncheckedBox((handle, context))
        let stopFlag = self.stopFlag
        thread = try PinnedThread.spawn(cpu: CPUPlacement(queues: 1).cpus[0]) {
            let (p, context) = box.value
            let user = Unmanaged.passUnretained(context).toOpaque().assumingMemoryBound(to: UInt8.self)
            while !stopFlag.value.load(ordering: .acquiring) {
                let n = pcap_dispatch(p, -1, { user, header, bytes in
                    let context = Unmanaged<Context>.fromOpaque(UnsafeRawPointer(user!)).takeUnretainedValue()
                    let h = header!.pointee
                    context.handler.handle(
                        Packet(
                            bytes: UnsafeRawBufferPointer(start: bytes, count: Int(h.caplen)), wireLength: Int(h.len),
                            seconds: UInt32(truncatingIfNeeded: h.ts.tv_sec), nanoseconds: UInt32(h.ts.tv_usec) * 1000, queue: 0))
                    context.processed.add(1, ordering: .relaxed)
                }, user)
                // One dispatch is one batch (a TPACKET_V3 block): where sleep-mode work is paid.
                context.handler.blockDone(queue: 0)
                if n < 0 && n != PCAP_ERROR_BREAK { break }
            }
            context.cpuSeconds = CWirecapLinux_thread_cpu_seconds()
        }
    }

    func statistics() -> [QueueFigures] {
        var stats = pcap_stat()
        pcap_stats(handle, &stats)
        // On Linux ps_recv counts what passed the filter, drops included.
        let processed = context.processed.load(ordering: .acquiring)
        let received = UInt64(stats.ps_recv) - UInt64(stats.ps_drop)
        return [
            QueueFigures(
                queue: 0, received: received, captureDrops: UInt64(stats.ps_drop), deliveryDrops: 0, processed: processed,
                inFlight: received > processed ? received - processed : 0, offloadedOut: 0, offloadedIn: 0, rolledOver: 0,
                cpuSeconds: context.cpuSeconds)
        ]
    }

    var processed: UInt64 { context.processed.load(ordering: .acquiring) }

    func stop() {
        stopFlag.value.store(true, ordering: .releasing)
        pcap_breakloop(handle)
        thread.join()
    }

    var cpuSeconds: Double { context.cpuSeconds }

    deinit { pcap_close(handle) }
}

/// Carries a value into a `@Sendable` closure where the code guarantees the synchronisation.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
