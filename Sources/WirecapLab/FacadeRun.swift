import CWirecapLinux
import Synchronization
import WirecapEngine
import WirecapPcap
import WirecapSandbox

/// wirecap through its libpcap-compatible facade: one live `PcapHandle` with the setup's queues,
/// ring geometry and pool, read by one pinned thread calling `dispatch` with the lab's handler,
/// as an IDS written for libpcap would read it.
final class FacadeRun: EngineRun, @unchecked Sendable {
    // @unchecked: the handle is read by the reading thread and, once it has been joined, by
    // `statistics`; `stop` touches it only through `breakLoop`, which is safe from any thread.
    private let handle: PcapHandle
    private let thread: PinnedThread
    private let reader = Reader()

    /// What the reading thread and the rest share.
    final class Reader: Sendable {
        let stopping = Atomic<Bool>(false)
        /// The reading thread's CPU seconds, stored when it ends.
        let cpuSeconds = Mutex<Double>(0)
    }

    init(point: ExperimentPoint, sandbox: Sandbox, ledger: SequenceLedger) throws {
        let setup = point.setup
        var options = PcapHandle.LiveOptions()
        options.queues = setup.queues
        options.snapLength = LabDefaults.snapLength
        options.blockSize = setup.blockSize
        options.bufferSize = setup.blockSize * setup.blockCount
        options.poolChunks = setup.poolChunks
        options.timeoutMilliseconds = 8
        let interface = sandbox.receiverInterface
        handle = try sandbox.receiver.run { try PcapHandle.openLive(device: interface, options: options) }
        let box = UncheckedBox((handle, point.handler(ledger: ledger, queue: 0)))
        let reader = self.reader
        thread = try PinnedThread.spawn(cpu: CPUPlacement(queues: 1).cpus[0]) {
            var (handle, handler) = box.value
            while !reader.stopping.load(ordering: .acquiring) {
                do {
                    try handle.dispatch(handler: &handler)
                } catch {
                    break
                }
            }
            reader.cpuSeconds.withLock { $0 = CWirecapLinux_thread_cpu_seconds() }
        }
    }

    func statistics() -> [QueueFigures] {
        guard let statistics = try? handle.engineStatistics() else { return [] }
        let readerSeconds = reader.cpuSeconds.withLock { $0 }
        return statistics.queues.map {
            // The reading thread works for every queue: its CPU is shared out by packets.
            let share = statistics.processed > 0 ? Double($0.processed) / Double(statistics.processed) : 0
            return QueueFigures(
                queue: $0.queue, received: $0.received, captureDrops: $0.captureDrops, deliveryDrops: $0.deliveryDrops,
                processed: $0.processed, inFlight: $0.inFlight, offloadedOut: $0.offloadedOut, offloadedIn: $0.offloadedIn,
                rolledOver: $0.rolledOver, cpuSeconds: $0.cpuSeconds + readerSeconds * share)
        }
    }

    var processed: UInt64 { (try? handle.engineStatistics().processed) ?? 0 }

    func stop() {
        reader.stopping.store(true, ordering: .releasing)
        handle.breakLoop()
        thread.join()
    }

    var cpuSeconds: Double { statistics().reduce(0) { $0 + $1.cpuSeconds } }

    deinit { handle.close() }
}
