import Synchronization
import WirecapEngine
import WirecapLinux
import WirecapSavefile

/// What a forwarder opens: the capture on IN (queues, ring, the pool, optional offloading) and
/// the TX rings on OUT.
public struct ForwarderConfiguration: Sendable {
    /// IN, and everything about the capture; `pool` is required.
    public var capture: CaptureConfiguration
    /// OUT, by name, in the same network namespace as IN: where `.forward` sends.
    public var output: String
    /// More outputs for `.send(to: 1...)`, in order; each gets a TX ring per queue too.
    public var additionalOutputs: [String]
    /// A monitor port: an interface that gets a copy of every frame sent on OUT. A copy that finds
    /// the tap's ring full is dropped and counted (`tapDrops`): a tap never holds forwarding up.
    public var tap: String? = nil
    /// A savefile (pcap, or pcapng by its name) of every frame sent on OUT, as sent, with its
    /// capture time. Written under one lock per chunk: a slow disk slows forwarding down (and,
    /// through back-pressure, may end in counted capture drops), it never loses a copy silently.
    public var tapFile: String? = nil
    /// Frames in each queue's TX ring.
    public var transmitFrames: Int
    /// How long OUT may take no frame before it counts as failed.
    public var stallNanoseconds: UInt64
    /// Send past OUT's qdisc (the default, fastest); false keeps it, so `tc` applies.
    public var bypassQdisc: Bool = true

    public init(
        capture: CaptureConfiguration, output: String, additionalOutputs: [String] = [], transmitFrames: Int = 4096,
        stallNanoseconds: UInt64 = 5_000_000_000
    ) {
        self.capture = capture
        self.output = output
        self.additionalOutputs = additionalOutputs
        self.transmitFrames = transmitFrames
        self.stallNanoseconds = stallNanoseconds
    }
}

/// A middlebox: frames captured on IN by the engine (N fanout queues, the chunk pool, optional
/// buddy offloading) go through a verdict handler and out on OUT, one TX ring per queue.
///
/// `init` opens every TX ring, then the capture group; from its return every frame IN accepts is
/// counted. `start` runs one forwarding thread per queue, placed like the engine's work threads.
/// `stop` drains: the capture threads hand what their rings hold over as chunks, the forwarding
/// threads forward every one, and the last of them waits until the kernel has sent everything.
///
/// A queue's frames leave on that queue's rings in capture order, also when offloading lets a
/// buddy decide on them (see `ForwardQueue`), so a flow, which the fanout keeps on one queue,
/// stays in order.
public final class Forwarder: Sendable {
    public let configuration: ForwarderConfiguration
    public let engine: CaptureEngine
    @usableFromInline let queues: [ForwardQueue]
    @usableFromInline let threads: ForwardThreads
    /// Guards every queue's turn, parked chunks and published counts (see `ForwardQueue`).
    @usableFromInline let ledger = Monitor()
    let tapFile: TapFile?

    public init(configuration: ForwarderConfiguration) throws(ForwardError) {
        let capture = configuration.capture
        let outputs = [configuration.output] + configuration.additionalOutputs
        if outputs.contains(capture.interface) || configuration.tap == capture.interface { throw .sameInterface(capture.interface) }
        do throws(CaptureError) { try capture.validate() } catch { throw .capture(error) }
        guard let pool = capture.pool else { throw .needsPool }
        let input = try Self.lookUp(capture.interface, activity: .capture)
        for name in outputs + (configuration.tap.map { [$0] } ?? []) {
            let output = try Self.lookUp(name, activity: .send)
            if output.mtu < input.mtu {
                throw .outputMTUTooSmall(input: input.name, inputMTU: input.mtu, output: output.name, outputMTU: output.mtu)
            }
        }
        do throws(SavefileError) {
            tapFile = try configuration.tapFile.map { path throws(SavefileError) in try TapFile(path: path, snapLength: capture.snapLength) }
        } catch {
            throw .tapFile(error)
        }
        do throws(CaptureError) {
            // The TX rings first: once the engine is open, IN's frames are counted.
            var queues: [ForwardQueue] = []
            for index in 0..<capture.queues {
                let rings = try outputs.map { name throws(CaptureError) in
                    try TxRing(interface: name, frames: configuration.transmitFrames, bypassQdisc: configuration.bypassQdisc)
                }
                let tap = try configuration.tap.map { name throws(CaptureError) in
                    try TxRing(interface: name, frames: configuration.transmitFrames, bypassQdisc: configuration.bypassQdisc)
                }
                queues.append(
                    ForwardQueue(
                        index: index, main: rings[0], others: Array(rings.dropFirst()), tap: tap, tapFile: tapFile, poolChunks: pool.chunks,
                        stallNanoseconds: configuration.stallNanoseconds))
            }
            self.queues = queues
            engine = try CaptureEngine(configuration: capture)
        } catch {
            throw .capture(error)
        }
        self.configuration = configuration
        threads = ForwardThreads()
    }

    private static func lookUp(_ name: String, activity: CaptureError.Activity) throws(ForwardError) -> NetworkInterface {
        let interface: NetworkInterface
        do { interface = try NetworkInterface(named: name) } catch { throw .capture(CaptureError(error, activity: activity)) }
        if !interface.isUp { throw .capture(.interfaceDown(name, activity: activity)) }
        return interface
    }

    /// Starts the capture threads and one forwarding thread per queue; each thread makes its own
    /// handler with `makeHandler(queue)` and owns it. The loop is specialised for `H`.
    @inlinable
    public func start<H: VerdictHandler>(_ makeHandler: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        try engine.startCapture()
        let (queues, ledger, engine, threads) = (self.queues, self.ledger, self.engine, self.threads)
        threads.expect(queues.count)
        for queue in queues {
            try threads.spawn(cpu: engine.queues[queue.index].cpu) {
                var thread = ForwardingThread(index: queue.index, queues: queues, ledger: ledger, engine: engine, handler: makeHandler(queue.index))
                thread.run()
                if threads.isLast() { thread.finishAll() }
            }
        }
    }

    /// Asks the capture to drain and stop. Async-signal-safe.
    public func requestStop() { engine.requestStop() }

    /// Waits until the capture has drained and every forwarding thread has sent what it put.
    public func wait() {
        engine.wait()
        threads.joinAll()
        closeTapFile()
    }

    /// The tap file's failure to flush or close, if any (reported, as `outputFailure` is).
    public var tapFileFailure: SavefileError? { tapFileError.withLock { $0 } }
    private let tapFileError = Mutex<SavefileError?>(nil)

    private func closeTapFile() {
        guard let tapFile, tapFile.writer.isOpen else { return }
        do throws(SavefileError) { try tapFile.close() } catch { tapFileError.withLock { $0 = $0 ?? error } }
    }

    public func stop() {
        requestStop()
        wait()
    }

    /// The first failure of the output, if any (the interface went away, the ring stalled).
    public var outputFailure: CaptureError? {
        ledger.withLock { queues.lazy.compactMap(\.failure).first }
    }

    /// A consistent snapshot: the ledger is held while the engine's counters are read, so no
    /// lease ends in between and the conservation law can be checked exactly.
    public func statistics() -> ForwardStatistics {
        ledger.lock()
        defer { ledger.unlock() }
        let capture = engine.statistics()
        return ForwardStatistics(
            queues: queues.map { queue in
                let t = queue.published
                return ForwardQueueStatistics(
                    queue: queue.index, capture: capture.queues[queue.index], forwarded: t.forwarded, verdictDrops: t.verdictDrops,
                    tooBig: t.tooBig, txRingFullWaits: t.txRingFullWaits, txErrors: t.txErrors, inTransmitRing: queue.inTransmitRing,
                    parked: queue.parkedFrames, chunksParked: queue.chunksParked, tapCopies: t.tapCopies, tapDrops: t.tapDrops)
            })
    }

    deinit { stop() }
}

/// The forwarding threads, joined once whoever asks (see `PinnedThread.join`).
@usableFromInline
final class ForwardThreads: Sendable {
    private let threads = Mutex<[PinnedThread]>([])
    /// Threads that have not finished their loop yet.
    private let running = Atomic<Int>(0)

    init() {}

    @usableFromInline
    func expect(_ count: Int) { running.store(count, ordering: .sequentiallyConsistent) }

    /// Called once by each thread as its loop ends: whether it was the last one.
    @usableFromInline
    func isLast() -> Bool { running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }

    @usableFromInline
    func spawn(cpu: Int?, _ body: @escaping @Sendable () -> Void) throws(CaptureError) {
        let thread = try PinnedThread.spawn(cpu: cpu, body)
        threads.withLock { $0.append(thread) }
    }

    func joinAll() {
        for thread in threads.withLock({ $0 }) { thread.join() }
    }
}
