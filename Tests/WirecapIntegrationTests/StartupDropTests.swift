import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapSandbox

extension SandboxSuites {
    /// The real filter used to go in before the pools were allocated, touched and locked: with
    /// large pools and traffic already on the wire, the small rings filled while no capture
    /// thread ran yet, and the capture dropped at start for no reason.
    @Suite("start-up with large pools")
    struct StartupDropTests {
        @Test("traffic already flowing while 2 x 128 MiB of pool is made ready: nothing dropped", .timeLimit(.minutes(1)))
        func largePools() throws {
            let frames = SequencedFrame(flows: 64, size: 64)
            try Sandbox.with(queues: 2) { sandbox in
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let sent = DispatchSemaphore(value: 0)
                // 2.5 s of traffic: longer than the pools take, so it is still flowing at start.
                let sending = Thread {
                    _ = sender.sendSequenced(frames, count: 150_000, rate: 60_000)
                    sent.signal()
                }
                sending.start()
                defer { sent.wait() }
                Thread.sleep(forTimeInterval: 0.2)
                // Rings of 4 x 64 KiB hold about 50 ms of this traffic; the pools take longer.
                let configuration = CaptureConfiguration(
                    interface: sandbox.receiverInterface, queues: 2,
                    ring: RingGeometry(blockSize: 64 << 10, blockCount: 4, blockTimeoutMilliseconds: 8), snapLength: 2048,
                    pinThreads: false, pool: PoolConfiguration(chunks: 2048))
                let opened = CWirecapLinux_monotonic_ns()
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                let openSeconds = Double(CWirecapLinux_monotonic_ns() - opened) / 1e9
                try engine.start { _ in DiscardingHandler() }
                Thread.sleep(forTimeInterval: 0.5)
                engine.stop()
                let stats = engine.statistics()
                print("start-up: engine open took \(String(format: "%.3f", openSeconds)) s; received \(stats.received), capture drops \(stats.captureDrops)")
                #expect(stats.received > 0, "the traffic was captured")
                #expect(stats.captureDrops == 0, "nothing dropped while the pools were made ready")
                #expect(stats.isConserved)
            }
        }
    }
}
