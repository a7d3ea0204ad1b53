import CWirecapLinux
import WirecapEngine
import WirecapSandbox

/// What one engine reports for one queue after a run.
package struct QueueFigures: Sendable, Codable, Equatable {
    package var queue: Int
    /// Accepted into the ring or buffer by the kernel.
    package var received: UInt64
    package var captureDrops: UInt64
    package var deliveryDrops: UInt64
    package var processed: UInt64
    package var inFlight: UInt64
    package var offloadedOut: UInt64
    package var offloadedIn: UInt64
    package var rolledOver: UInt64
    /// CPU seconds of this queue's threads (capture and work; libpcap's one thread).
    package var cpuSeconds: Double

    /// Everything the kernel saw for this queue.
    package var offered: UInt64 { received + captureDrops }
}

/// One engine, opened in the sandbox's receiving namespace, running the lab's handler.
protocol EngineRun: AnyObject {
    func statistics() -> [QueueFigures]
    /// Packets handled so far (cheap enough to poll while waiting for the tail of a run).
    var processed: UInt64 { get }
    func stop()
    /// CPU seconds of the engine's own threads (after stop).
    var cpuSeconds: Double { get }
}

/// wirecap's engine in any of its four configurations.
final class WirecapRun: EngineRun {
    let engine: CaptureEngine

    init(point: ExperimentPoint, sandbox: Sandbox, ledger: SequenceLedger, order: FlowOrder) throws {
        let configuration = point.setup.captureConfiguration(interface: sandbox.receiverInterface)
        engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
        try engine.start { point.handler(ledger: ledger, order: order, queue: $0) }
    }

    func statistics() -> [QueueFigures] {
        engine.statistics().queues.map {
            QueueFigures(
                queue: $0.queue, received: $0.received, captureDrops: $0.captureDrops, deliveryDrops: $0.deliveryDrops,
                processed: $0.processed, inFlight: $0.inFlight, offloadedOut: $0.offloadedOut, offloadedIn: $0.offloadedIn,
                rolledOver: $0.rolledOver, cpuSeconds: $0.cpuSeconds)
        }
    }

    var processed: UInt64 { engine.statistics().processed }
    func stop() { engine.stop() }
    var cpuSeconds: Double { engine.statistics().cpuSeconds }
}
