import Foundation
import WirecapEngine

/// The points an experiment run measures.
package struct ExperimentSuite: Sendable {
    package var points: [ExperimentPoint]
    package var repeats: Int

    /// The default suite, sized to finish in a few minutes on a 2-core machine. Work is spent in
    /// sleep mode by default: the work threads then take no CPU from the sender (whose core also
    /// runs the kernel's receive path on veth) or from each other, which stands in for a machine
    /// with a core per queue.
    package static func standard(scenarios: [ScenarioKind], repeats: Int = 3, quick: Bool = false, workMode: SyntheticWork.Mode = .sleep, tracePath: String?) -> ExperimentSuite {
        var points: [ExperimentPoint] = []
        let smallRing = (size: 256 << 10, count: 16)  // 4 MiB per queue, libpcap included
        func setup(_ engine: LabEngine, queues: Int, pool: Int = 16, threshold: Double = 0.5) -> EngineSetup {
            EngineSetup(engine: engine, queues: queues, blockSize: smallRing.size, blockCount: smallRing.count, poolChunks: pool, threshold: threshold)
        }
        let scale = quick ? 0.1 : 1.0
        func n(_ packets: Int) -> Int { max(1000, Int(Double(packets) * scale)) }

        if scenarios.contains(.burst) {
            // One queue, 5 us per packet, a burst as fast as the sender goes: buffering decides.
            let bursts = quick ? [300_000] : [100_000, 300_000]
            for burst in bursts {
                let traffic = Traffic(packets: n(burst), rate: nil, flows: 64, size: 64)
                var setups = [setup(.libpcap, queues: 1), setup(.fanout, queues: 1)]
                setups += (quick ? [64] : [16, 64, 256]).map { setup(.basic, queues: 1, pool: $0) }
                setups.append(setup(.facade, queues: 1, pool: 64))
                for s in setups {
                    points.append(
                        ExperimentPoint(
                            scenario: .burst, variable: "R", value: Double(s.engine.usesPool ? s.poolChunks : 0),
                            series: "burst=\(traffic.packets)", setup: s, traffic: traffic, workNanoseconds: 5_000, workMode: workMode.rawValue))
                }
            }
        }
        if scenarios.contains(.imbalance) {
            // Two hash queues at 250,000 frames/s and 7 us per packet: one worker handles about
            // 143,000/s, two 286,000/s, so only an imbalance can overload a queue.
            for share in quick ? [90] : [50, 90] {
                let traffic = Traffic(packets: n(400_000), rate: 250_000, flows: 64, size: 64, elephantPercent: share)
                var setups = [setup(.libpcap, queues: 2), setup(.fanout, queues: 2), setup(.rollover, queues: 2), setup(.basic, queues: 2)]
                setups += (quick ? [0.5] : [0.25, 0.5, 0.75]).map { setup(.advanced, queues: 2, threshold: $0) }
                // The facade with offloading: its readers are told each chunk's owner and sequence,
                // so the reorder column has its "restored" figure here.
                setups.append(setup(.facadeOffload, queues: 2, threshold: 0.5))
                for s in setups {
                    points.append(
                        ExperimentPoint(
                            scenario: .imbalance, variable: "T", value: s.engine == .advanced || s.engine == .facadeOffload ? s.threshold : 0,
                            series: "elephant=\(share)%", setup: s, traffic: traffic, workNanoseconds: 7_000, workMode: workMode.rawValue))
                }
            }
        }
        if scenarios.contains(.load) {
            // Two hash queues, 64 even flows, 150,000 frames/s; the work per packet rises.
            let traffic = Traffic(packets: n(200_000), rate: 150_000, flows: 64, size: 64)
            for x in quick ? [10_000] : [2_000, 6_000, 10_000, 14_000] {
                for engine in LabEngine.capture {
                    points.append(
                        ExperimentPoint(
                            scenario: .load, variable: "x_ns", value: Double(x), series: "150kpps", setup: setup(engine, queues: 2),
                            traffic: traffic, workNanoseconds: x, workMode: workMode.rawValue))
                }
            }
        }
        if scenarios.contains(.trace), let tracePath {
            // A real multi-flow trace with a heavy tail, looped, at 100,000 frames/s, 8 us per packet.
            let traffic = Traffic(packets: n(200_000), rate: 100_000, flows: 0, size: 0, tracePath: tracePath)
            for engine in LabEngine.capture {
                points.append(
                    ExperimentPoint(
                        scenario: .trace, variable: "x_ns", value: 8_000, series: URL(fileURLWithPath: tracePath).lastPathComponent,
                        setup: setup(engine, queues: 2), traffic: traffic, workNanoseconds: 8_000, workMode: workMode.rawValue))
            }
        }
        if scenarios.contains(.ids), let tracePath {
            // The same trace, two queues, the example IDS's inspection as the work (CPU, so it
            // competes with the sender and the kernel for the two cores, as a real IDS would).
            for rate in quick ? [150_000] : [100_000, 150_000, 200_000] {
                let traffic = Traffic(packets: n(200_000), rate: Double(rate), flows: 0, size: 0, tracePath: tracePath)
                for engine in LabEngine.capture {
                    points.append(
                        ExperimentPoint(
                            scenario: .ids, variable: "rate", value: Double(rate), series: "\(rate / 1000)kpps",
                            setup: setup(engine, queues: 2), traffic: traffic, workNanoseconds: 0, workMode: ExperimentPoint.idsWorkMode))
                }
            }
        }
        if scenarios.contains(.fwd) {
            // The same 64-byte frames over 64 flows through every forwarder, two queues where a
            // forwarder has queues: flat out, then paced at half the rate the sender reached flat
            // out through the bridge (the latency point). Rings of 4 KiB blocks (ForwardLab: why);
            // plain wirecap has 2 chunks per queue, the fewest with which capture and forwarding
            // overlap (1 would make the capture thread wait for the one chunk to come back); the
            // pool 512, as much again as the ring; offloading at T = 0.25 of that pool.
            let traffic = Traffic(packets: n(200_000), rate: nil, flows: 64, size: 64)
            for load in [1.0, 0.5] {
                for engine in LabEngine.forwarding {
                    let s = EngineSetup(
                        engine: engine, queues: 2, blockSize: ForwardLab.blockSize, blockCount: ForwardLab.blockCount,
                        poolChunks: engine == .fwdPlain ? 2 : 512, threshold: 0.25)
                    points.append(
                        ExperimentPoint(
                            scenario: .fwd, variable: "load", value: load, series: load >= 1 ? "flat out" : "half rate", setup: s,
                            traffic: traffic, workNanoseconds: 0, workMode: "none"))
                }
            }
        }
        return ExperimentSuite(points: points, repeats: quick ? 1 : repeats)
    }

    /// The suite without `engine`'s points (a forwarder that is not installed).
    package func without(_ engine: LabEngine) -> ExperimentSuite {
        ExperimentSuite(points: points.filter { $0.setup.engine != engine }, repeats: repeats)
    }
}
