import CWirecapLinux
import Synchronization
import WirecapEngine
import WirecapPcap
import WirecapSandbox

/// wirecap through its libpcap-compatible facade: one live `PcapHandle` with the setup's queues,
/// ring geometry and pool, and one reader per queue (`handle.queues[i]`), each read by a thread of
/// its own, pinned where the engine pins queue i's threads, calling `dispatch` with its own copy of
/// the lab's handler: as a multi-threaded IDS written for libpcap reads it (Suricata's workers,
/// one pcap_t per queue).
final class FacadeRun: EngineRun, @unchecked Sendable {
    // @unchecked: each reader is read by its thread and, once every thread has been joined, by
    // `statistics`; `stop` touches them only through `breakLoop`, which is safe from any thread.
    private let handle: PcapHandle
    private var threads: [PinnedThread] = []
    private let readers: Readers

    /// What the reading threads and the rest share.
    final class Readers: Sendable {
        let stopping = Atomic<Bool>(false)
        /// Each reading thread's CPU seconds, stored when it ends.
        let cpuSeconds: Mutex<[Double]>
        init(count: Int) { cpuSeconds = Mutex(Array(repeating: 0, count: count)) }
    }

    init(point: ExperimentPoint, sandbox: Sandbox, ledger: SequenceLedger, order: FlowOrder) throws {
        let setup = point.setup
        var options = PcapHandle.LiveOptions()
        options.queues = setup.queues
        options.snapLength = LabDefaults.snapLength
        options.blockSize = setup.blockSize
        options.bufferSize = setup.blockSize * setup.blockCount
        options.poolChunks = setup.poolChunks
        options.timeoutMilliseconds = 8
        if setup.engine == .facadeOffload { options.offloadThreshold = setup.threshold }
        let interface = sandbox.receiverInterface
        handle = try sandbox.receiver.run { try PcapHandle.openLive(device: interface, options: options) }
        let readers = Readers(count: handle.queues.count)
        self.readers = readers
        // Where the engine runs queue i's capture and work threads (the facade's capture threads
        // are placed the same way).
        let placement = CPUPlacement(queues: handle.queues.count)
        do {
            for (queue, reader) in handle.queues.enumerated() {
                let box = UncheckedBox((reader, point.handler(ledger: ledger, order: order, queue: queue)))
                threads.append(
                    try PinnedThread.spawn(cpu: placement.cpus[queue]) {
                        var (reader, handler) = box.value
                        while !readers.stopping.load(ordering: .acquiring) {
                            do {
                                try reader.dispatch(handler: &handler)
                            } catch {
                                break
                            }
                        }
                        let seconds = CWirecapLinux_thread_cpu_seconds()
                        readers.cpuSeconds.withLock { $0[queue] = seconds }
                    })
            }
        } catch {
            stop()
            throw error
        }
    }

    func statistics() -> [QueueFigures] {
        guard let statistics = try? handle.engineStatistics() else { return [] }
        let readerSeconds = readers.cpuSeconds.withLock { $0 }
        return statistics.queues.map {
            // Queue i's reader is its work thread (it also works for any chunk offloaded to it).
            QueueFigures(
                queue: $0.queue, received: $0.received, captureDrops: $0.captureDrops, deliveryDrops: $0.deliveryDrops,
                processed: $0.processed, inFlight: $0.inFlight, offloadedOut: $0.offloadedOut, offloadedIn: $0.offloadedIn,
                rolledOver: $0.rolledOver, cpuSeconds: $0.cpuSeconds + ($0.queue < readerSeconds.count ? readerSeconds[$0.queue] : 0))
        }
    }

    var processed: UInt64 { (try? handle.engineStatistics().processed) ?? 0 }

    func stop() {
        readers.stopping.store(true, ordering: .releasing)
        for reader in handle.queues { reader.breakLoop() }
        for thread in threads { thread.join() }
    }

    var cpuSeconds: Double { statistics().reduce(0) { $0 + $1.cpuSeconds } }

    deinit { handle.close() }
}
