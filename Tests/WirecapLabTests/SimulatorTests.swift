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

/// Sustained against burst: the 16-queue machine at 2,000 ns per packet.
@Suite("Sustained and burst in the model")
struct SustainedModelTests {
    /// 16 queues, 14.88 Mpps of 64-byte frames, 2,000 ns of work: 16 workers clear 8 Mpps, so a
    /// sustained load must lose 1 - 8 / 14.88 = 46.2 %.
    static let capacityLoss = 1 - 8.0 / 14.88

    func point(_ engine: LabEngine, packets: Int, blockSize: Int, blocks: Int, pool: Int) -> ExperimentPoint {
        ExperimentPoint(
            scenario: .load, variable: "x_ns", value: 2_000, series: "test",
            setup: EngineSetup(engine: engine, queues: 16, blockSize: blockSize, blockCount: blocks, poolChunks: pool, threshold: 0.5),
            traffic: Traffic(packets: packets, rate: 14_880_000, flows: 4096, size: 64), workNanoseconds: 2_000, workMode: "model")
    }

    @Test("the 16-queue machine's sustained points last at least 10 fill times, its 100 ms points are bursts, and both say so")
    func bigMachineRegimes() {
        let points = Simulator.bigMachinePoints(quick: false)
        let atTwo = points.filter { $0.workNanoseconds == 2_000 }
        let sustained = atTwo.filter { $0.series.contains("sustained") }
        let bursts = atTwo.filter { $0.series.contains("burst") }
        #expect(sustained.count == 4 && bursts.count == 4)
        for p in sustained {
            let regime = p.regime(senderRate: 14_880_000)
            #expect(regime.kind == .sustained, "\(p.label)")
            let fill = regime.fillSeconds ?? 0
            #expect(fill > 0 && regime.duration >= 10 * fill, "\(p.label): \(regime.duration) s against a fill of \(fill) s")
            #expect(abs((regime.capacityLoss ?? 0) - Self.capacityLoss) < 0.001, "\(p.label)")
            #expect(regime.short.hasPrefix("sustained"))
        }
        for p in bursts {
            let regime = p.regime(senderRate: 14_880_000)
            #expect(regime.kind == .burst, "\(p.label)")
            #expect(abs(regime.duration - 0.1) < 1e-6)
            #expect(regime.sentence.contains("Burst: 100 ms of traffic"), "\(regime.sentence)")
        }
        // The pool's buffer takes 305 ms to fill at 2,000 ns: (16 + 64) blocks of 1638 frames per
        // queue against 0.93 - 0.5 Mpps of excess.
        let basic = bursts.first { $0.setup.engine == .basic }!.regime(senderRate: 14_880_000)
        #expect(abs((basic.fillSeconds ?? 0) - 80.0 * 1638 / (14_880_000.0 / 16 - 500_000)) < 0.001)
    }

    @Test("at 2,000 ns a sustained load loses about 46 % in steady state in every engine with 16 workers; a burst that fits the pool loses nothing")
    func sustainedLoss() {
        // Small buffers (4 x 64 KiB rings, 8 chunks) so that 10 fill times take 0.12 s of
        // traffic, a test's worth; the steady state does not depend on the buffer.
        let engines: [LabEngine] = [.fanout, .rollover, .basic, .advanced]
        let shapes = engines.map { point($0, packets: 0, blockSize: 64 << 10, blocks: 4, pool: 8) }
        let packets = Simulator.sustainedPackets(for: shapes, rate: 14_880_000, minimumSeconds: 0)
        let points = engines.map { point($0, packets: packets, blockSize: 64 << 10, blocks: 4, pool: 8) }
        let results = Simulator.runAll(points.map { ($0, Simulator.Machine(senderRate: 14_880_000)) })
        for r in results {
            #expect(r.regime.kind == .sustained, "\(r.point.label)")
            let steady = r.secondHalfLoss?.median ?? 0
            #expect(abs(steady - Self.capacityLoss) < 0.01, "\(r.point.label): second half lost \(steady)")
            // The total includes the fill, so it is a little lower, never higher.
            #expect(r.dropRate.median <= steady + 0.001 && r.dropRate.median > Self.capacityLoss - 0.06, "\(r.point.label): \(r.dropRate.median)")
            #expect(r.runs[0].conserved)
        }
        // The burst: 100 ms at full size, 16 x 256 KiB rings and 64 chunks, in basic mode.
        let burst = Simulator.runAll([(point(.basic, packets: 1_488_000, blockSize: 256 << 10, blocks: 16, pool: 64), Simulator.bigMachineModel)])[0]
        #expect(burst.regime.kind == .burst)
        #expect(burst.dropRate.median == 0, "a 100 ms burst fits 80 blocks a queue")
    }
}
