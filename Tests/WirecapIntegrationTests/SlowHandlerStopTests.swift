import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapSandbox

extension SandboxSuites {
    /// A stop in pool mode waited for a free chunk only as long as the window meant for the
    /// kernel's retire timer (about 116 ms), so a handler slower than that per chunk made the stop
    /// leave the rest of what the kernel had accepted in the ring.
    @Suite("stop with a slow handler")
    struct SlowHandlerStopTests {
        /// Takes 150 ms per chunk: slower than the retire window, far faster than the stop's bound.
        struct SlowHandler: PacketHandler {
            mutating func handle(_ packet: Packet) {}
            mutating func blockDone(queue: Int) { usleep(150_000) }
        }

        /// 600 frames into a ring of small blocks, a pool of 2 chunks and the slow handler, then a
        /// stop 50 ms later, while the pool is empty and blocks wait in the ring.
        static func stopEarly(stopWaitMilliseconds: Int) throws -> (statistics: CaptureStatistics, stopSeconds: Double) {
            let frames = SequencedFrame(flows: 1, size: 64)
            return try Sandbox.with { sandbox in
                let configuration = CaptureConfiguration(
                    interface: sandbox.receiverInterface, queues: 1,
                    ring: RingGeometry(blockSize: 16 << 10, blockCount: 16, blockTimeoutMilliseconds: 8), snapLength: 2048,
                    pinThreads: false, pool: PoolConfiguration(chunks: 2, stopWaitMilliseconds: stopWaitMilliseconds))
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                try engine.start { _ in SlowHandler() }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: 600)
                Thread.sleep(forTimeInterval: 0.05)
                let stopping = CWirecapLinux_monotonic_ns()
                engine.stop()
                return (engine.statistics(), Double(CWirecapLinux_monotonic_ns() - stopping) / 1e9)
            }
        }

        @Test("stop waits for the handler: everything the kernel accepted is processed", .timeLimit(.minutes(1)))
        func waitsForHandler() throws {
            let (stats, seconds) = try Self.stopEarly(stopWaitMilliseconds: 10_000)
            print("slow handler: stop took \(String(format: "%.2f", seconds)) s; received \(stats.received), processed \(stats.processed), left in the ring \(stats.queues[0].inRing)")
            #expect(stats.received == 600)
            #expect(stats.processed == 600, "nothing the kernel accepted is left behind")
            #expect(stats.inFlight == 0)
            #expect(stats.isConserved)
            #expect(seconds < 9, "the stop's bound (10 s) was not needed")
        }

        @Test("with a bound of 0, what is left behind is counted", .timeLimit(.minutes(1)))
        func boundedAndCounted() throws {
            let (stats, _) = try Self.stopEarly(stopWaitMilliseconds: 0)
            #expect(stats.received == 600)
            #expect(stats.processed < 600, "the handler could not keep up within the bound")
            #expect(stats.processed + stats.inFlight == 600, "what was left behind is counted in flight")
            #expect(stats.isConserved)
        }
    }
}
