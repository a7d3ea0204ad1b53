import Foundation
import Testing
import WirecapEngine
import WirecapSandbox

extension SandboxSuites {
    /// WireCAP's advanced mode through the sandbox: an elephant flow pins one queue, and buddy
    /// offloading moves its excess chunks to the idle queue.
    @Suite("Buddy offloading through a veth sandbox")
    struct OffloadIntegrationTests {
        @Test("an elephant flow over 2 hash queues: without offloading over 10 % is lost, with T = 0.5 nothing", .timeLimit(.minutes(3)))
        func elephant() throws {
            // 90 % of frames in one flow: its queue gets about 95 % of the traffic. At 7 us per
            // packet (sleep mode: the work threads use no CPU, so two of them fit on this
            // machine beside the sender) one worker handles about 143,000 frames a second and two
            // 286,000; 220,000 a second overloads the elephant's queue (209,000) but leaves both
            // workers a quarter idle, room for the capture threads on two shared cores.
            let total = 1_000_000
            let rate = 220_000.0
            let frames = SequencedFrame(flows: 64, size: 64, elephantPercent: 90)
            let work = SyntheticWork(nanosecondsPerPacket: 7_000, mode: .sleep)
            let ring = RingGeometry(blockSize: 256 << 10, blockCount: 16, blockTimeoutMilliseconds: 8)
            func configuration(_ sandbox: Sandbox, pool: PoolConfiguration?, offload: OffloadConfiguration?, rollover: Bool = false) -> CaptureConfiguration {
                CaptureConfiguration(
                    interface: sandbox.receiverInterface, queues: 2, fanout: .hash, rollover: rollover, ring: ring, snapLength: 2048, pool: pool,
                    offload: offload)
            }
            try Sandbox.with(queues: 2) { sandbox in
                let pool = PoolConfiguration(chunks: 32)
                let local = try drive(
                    sandbox, configuration: configuration(sandbox, pool: pool, offload: nil), frames: frames, total: total, rate: rate, work: work)
                let offloaded = try drive(
                    sandbox, configuration: configuration(sandbox, pool: pool, offload: OffloadConfiguration(threshold: 0.5)), frames: frames,
                    total: total, rate: rate, work: work)
                let rollover = try drive(
                    sandbox, configuration: configuration(sandbox, pool: nil, offload: nil, rollover: true), frames: frames, total: total,
                    rate: rate, work: work)
                for (name, run) in [("pool, no offloading", local), ("pool, offloading T=0.5", offloaded), ("kernel rollover, no pool", rollover)] {
                    print("\(name): sent \(run.sent) in \(String(format: "%.2f", run.sendSeconds)) s; \(run.verdict)")
                    for q in run.statistics.queues {
                        print(
                            "  queue \(q.queue): received \(q.received), processed \(q.processed), capture drops \(q.captureDrops), delivery drops \(q.deliveryDrops), freezes \(q.freezes), offloaded out \(q.offloadedOut) in \(q.offloadedIn), backlog max \(q.backlogMax), pool free min \(q.poolFreeMinimum)/\(q.poolChunks), rolled over \(q.rolledOver), rollover failed \(q.rolloverFailed), lent \(q.blocksLent), copied \(q.blocksCopied) + \(q.blocksCopiedLater) later, lent block reached \(q.heldBlockReached)")
                    }
                }
                for run in [local, offloaded, rollover] {
                    #expect(run.sent == total)
                    #expect(run.statistics.offered == UInt64(total), "every frame is counted: accepted or dropped by the kernel")
                    #expect(run.statistics.isConserved && run.statistics.inFlight == 0)
                    #expect(run.unconserved.isEmpty, "\(run.unconserved.prefix(3))")
                    #expect(run.verdict.duplicated == 0 && run.verdict.altered == 0)
                    #expect(UInt64(run.verdict.captured) == run.statistics.processed)
                }
                let lost = local.statistics.captureDrops + local.statistics.deliveryDrops
                #expect(Double(lost) >= 0.10 * Double(total), "without offloading the elephant's queue drops over 10 %")
                #expect(offloaded.verdict.exactlyOnce && offloaded.verdict.captured == total, "\(offloaded.verdict)")
                #expect(offloaded.statistics.captureDrops == 0 && offloaded.statistics.deliveryDrops == 0)
                let out = offloaded.statistics.queues.map(\.offloadedOut)
                let into = offloaded.statistics.queues.map(\.offloadedIn)
                #expect(out.reduce(0, +) > 0 && out.reduce(0, +) == into.reduce(0, +), "chunks moved, and every one arrived")
                #expect(local.statistics.queues.allSatisfy { $0.offloadedOut == 0 })
            }
        }
    }
}
