import Testing
import WirecapLab

/// The discrete-event model on cases whose answer is known without it.
@Suite("Discrete-event model")
struct SimulatorTests {
    func point(_ engine: LabEngine, queues: Int = 1, packets: Int, rate: Double?, workNs: Int, pool: Int = 16, elephant: Int = 0, threshold: Double = 0.5) -> ExperimentPoint {
        ExperimentPoint(
            scenario: .load, variable: "x", value: 0, series: "test",
            setup: EngineSetup(engine: engine, queues: queues, blockSize: 256 << 10, blockCount: 16, poolChunks: pool, threshold: threshold),
            traffic: Traffic(packets: packets, rate: rate, flows: 64, size: 64, elephantPercent: elephant), workNanoseconds: workNs, workMode: "model")
    }

    func run(_ p: ExperimentPoint, senderRate: Double = 800_000) -> RunResult {
        Simulator(point: p, machine: .init(senderRate: senderRate)).run()
    }

    @Test("a load the worker keeps up with loses nothing, in every engine")
    func underCapacity() {
        for engine in LabEngine.capture {
            let r = run(point(engine, queues: 2, packets: 100_000, rate: 100_000, workNs: 5_000))
            #expect(r.processed == 100_000, "\(engine)")
            #expect(r.conserved)
        }
    }

    @Test("a burst bigger than the ring is lost by the plain ring, absorbed by a pool big enough")
    func burst() {
        // 300,000 frames at 800,000/s, 5 us each: the worker clears 200,000/s.
        let plain = run(point(.fanout, packets: 300_000, rate: nil, workNs: 5_000))
        let pooled = run(point(.basic, packets: 300_000, rate: nil, workNs: 5_000, pool: 256))
        #expect(plain.captureDrops > 100_000)
        #expect(pooled.processed == 300_000)
        // What the plain ring keeps: about what 16 blocks hold plus what the worker cleared meanwhile.
        let perBlock = (256 * 1024 - 48) / 160
        let expected = Double(16 * perBlock) + 300_000.0 / 800_000 * 200_000
        #expect(abs(Double(plain.processed) - expected) / expected < 0.15, "processed \(plain.processed), expected about \(Int(expected))")
    }

    @Test("offloading removes the drops an elephant causes, where the basic mode keeps them")
    func elephant() {
        let basic = run(point(.basic, queues: 2, packets: 1_000_000, rate: 250_000, workNs: 7_000, elephant: 90))
        let advanced = run(point(.advanced, queues: 2, packets: 1_000_000, rate: 250_000, workNs: 7_000, elephant: 90))
        #expect(Double(basic.captureDrops) > 0.1 * 1_000_000)
        #expect(advanced.captureDrops == 0)
        #expect(advanced.queues.reduce(0) { $0 + $1.offloadedOut } > 0)
        #expect(basic.conserved && advanced.conserved)
    }
}
