import Dispatch
import Synchronization
import WirecapEngine

/// A discrete-event model of the engines: TPACKET_V3 rings filled in ring order with a retire
/// timer, consumers that hold a block while they work on it (plain fanout, rollover, libpcap),
/// and wirecap's pool, capture queues and buddy offloading (with the engine's own `OffloadPolicy`).
///
/// What it leaves out, on purpose: CPU contention (every worker has a core, as sleep mode
/// assumes), cache effects, the copy's cost, and the kernel's exact rollover heuristics (a member
/// spills when the block a quarter of the ring ahead is not free, as `__tpacket_v3_has_room`
/// checks). It answers "how much buffering and offloading does this load need", for machines
/// larger than the one the tests run on.
package struct Simulator {
    package struct Machine: Sendable {
        /// Frames a flat-out sender offers per second (bursts).
        package var senderRate: Double
        package var blockTimeout: Double

        package init(senderRate: Double, blockTimeout: Double = 0.008) {
            self.senderRate = senderRate
            self.blockTimeout = blockTimeout
        }
    }

    let point: ExperimentPoint
    let machine: Machine

    package init(point: ExperimentPoint, machine: Machine) {
        self.point = point
        self.machine = machine
    }

    /// The model of every measured point (traces aside), with the sender as fast as it was measured
    /// to be in that point's runs, so that the two can be compared.
    package static func model(of measured: [PointResult]) -> [PointResult] {
        runAll(
            measured.filter { $0.point.traffic.tracePath == nil && !$0.simulated && Self.models($0.point.setup) }.map { m in
                let senderRate = Spread(m.runs.map { $0.sendSeconds > 0 ? Double($0.offered) / $0.sendSeconds : 800_000 }).median
                return (m.point, Machine(senderRate: senderRate))
            })
    }

    /// Runs the model of every point, on every core (each run is independent), in the given order.
    package static func runAll(_ jobs: [(ExperimentPoint, Machine)]) -> [PointResult] {
        let results = Mutex<[PointResult?]>(Array(repeating: nil, count: jobs.count))
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            let result = PointResult(point: jobs[i].0, runs: [Simulator(point: jobs[i].0, machine: jobs[i].1).run()], simulated: true)
            results.withLock { $0[i] = result }
        }
        return results.withLock { $0.compactMap { $0 } }
    }

    /// Whether the model describes the setup: it gives every queue a worker of its own (the
    /// facade too: a reader per queue); it has no transmit side, so no forwarder.
    static func models(_ setup: EngineSetup) -> Bool {
        !setup.engine.isForwarding
    }

    /// Frames a sustained point offers at `rate`: enough for `Regime.sustainedFactor` (plus half)
    /// times the longest fill time of the points' buffers at the excess rate, and at least
    /// `minimumSeconds` of traffic.
    package static func sustainedPackets(for points: [ExperimentPoint], rate: Double, minimumSeconds: Double) -> Int {
        let fill = points.compactMap { $0.regime(senderRate: rate).fillSeconds }.max() ?? 0
        return Int((max(minimumSeconds, fill * (Regime.sustainedFactor + 0.5)) * rate).rounded(.up))
    }

    /// The machine of the WireCAP paper's size: 16 queues, 64-byte frames at 10GbE line rate
    /// (14.88 Mpps, 0.93 Mpps a queue), 4 MiB rings and 64 chunks of 256 KiB per queue; an even
    /// load rising past what 16 workers can do (x = 1.075 us is exactly their capacity), and one
    /// flow carrying 20 % of the traffic. Every setting twice: as a 100 ms burst (what the model
    /// replayed before: it answers "does a 100 ms burst fit the buffers") and as a sustained
    /// load that fills the largest buffer at least ten times over (it answers "does the machine
    /// keep up"). --quick keeps the bursts at 2 us only, 20 ms long.
    package static func bigMachine(quick: Bool) -> [PointResult] {
        runAll(bigMachinePoints(quick: quick).map { ($0, bigMachineModel) })
    }

    /// 10GbE line rate for 64-byte frames.
    package static let bigMachineModel = Machine(senderRate: 14_880_000)

    /// The points of `bigMachine`, not yet run.
    package static func bigMachinePoints(quick: Bool) -> [ExperimentPoint] {
        let rate = bigMachineModel.senderRate
        let engines: [LabEngine] = [.fanout, .rollover, .basic, .advanced]
        func setup(_ engine: LabEngine) -> EngineSetup {
            EngineSetup(engine: engine, queues: 16, blockSize: 256 << 10, blockCount: 16, poolChunks: 64, threshold: 0.5)
        }
        func points(x: Int, elephant: Int, packets: Int, series: String) -> [ExperimentPoint] {
            engines.map { engine in
                let traffic = Traffic(packets: packets, rate: rate, flows: 4096, size: 64, elephantPercent: elephant)
                return elephant > 0
                    ? ExperimentPoint(
                        scenario: .imbalance, variable: "T", value: engine == .advanced ? 0.5 : 0, series: series, setup: setup(engine),
                        traffic: traffic, workNanoseconds: x, workMode: "model")
                    : ExperimentPoint(
                        scenario: .load, variable: "x_ns", value: Double(x), series: series, setup: setup(engine), traffic: traffic,
                        workNanoseconds: x, workMode: "model")
            }
        }
        let burst = quick ? 297_600 : 1_488_000
        let burstName = quick ? "20ms" : "100ms"
        var all: [ExperimentPoint] = []
        for x in quick ? [2_000] : [1_000, 1_300, 1_600, 2_000] {
            all += points(x: x, elephant: 0, packets: burst, series: "16q burst \(burstName)")
            if !quick {
                let packets = sustainedPackets(for: points(x: x, elephant: 0, packets: 0, series: ""), rate: rate, minimumSeconds: 1)
                all += points(x: x, elephant: 0, packets: packets, series: "16q sustained")
            }
        }
        if !quick {
            all += points(x: 900, elephant: 20, packets: burst, series: "16q elephant=20% burst \(burstName)")
            let packets = sustainedPackets(for: points(x: 900, elephant: 20, packets: 0, series: ""), rate: rate, minimumSeconds: 1)
            all += points(x: 900, elephant: 20, packets: packets, series: "16q elephant=20% sustained")
        }
        return all
    }

    /// Series names of the WireCAP figures, which the plots and tables keep apart.
    package static let rxmSeries = "RxM"
    package static let thresholdSeries = "T sweep"

    /// WireCAP's two figures, by name, on the model. Drop rate against R x M (pool chunks times
    /// chunk size) at a fixed burst: the default suite's burst (300,000 frames sent flat out into
    /// one queue with 5 us of work, a 4 MiB ring), at `senderRate`, for chunks of 64 KiB, 256 KiB
    /// and 1 MiB. Drop rate against T for several imbalances: the imbalance scenario's two queues
    /// (250,000 frames/s, 7 us, 4 MiB ring and 16 chunks of 256 KiB a queue), an elephant of 50,
    /// 70 or 90 % of the frames, T from 0.1 to 1 (at 1 a backlog never passes T: no offloading),
    /// each run 2 s, long enough for the basic mode's buffer to fill several times over.
    package static func wirecapFigurePoints(senderRate: Double, quick: Bool) -> [ExperimentPoint] {
        var points: [ExperimentPoint] = []
        let burst = Traffic(packets: quick ? 30_000 : 300_000, rate: nil, flows: 64, size: 64)
        for chunk in quick ? [256 << 10] : [64 << 10, 256 << 10, 1 << 20] {
            for r in quick ? [0, 16, 64] : [0, 4, 8, 16, 32, 64, 128, 256] {
                let setup = EngineSetup(
                    engine: r == 0 ? .fanout : .basic, queues: 1, blockSize: chunk, blockCount: (4 << 20) / chunk, poolChunks: r, threshold: 0.5)
                points.append(
                    ExperimentPoint(
                        scenario: .burst, variable: "R", value: Double(r), series: "\(rxmSeries) M=\(chunk >> 10)KiB", setup: setup, traffic: burst,
                        workNanoseconds: 5_000, workMode: "model"))
            }
        }
        for share in quick ? [90] : [50, 70, 90] {
            let traffic = Traffic(packets: quick ? 100_000 : 500_000, rate: 250_000, flows: 64, size: 64, elephantPercent: share)
            for t in quick ? [0.5, 1.0] : [0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
                let setup = EngineSetup(engine: .advanced, queues: 2, blockSize: 256 << 10, blockCount: 16, poolChunks: 16, threshold: t)
                points.append(
                    ExperimentPoint(
                        scenario: .imbalance, variable: "T", value: t, series: "\(thresholdSeries) elephant=\(share)%", setup: setup, traffic: traffic,
                        workNanoseconds: 7_000, workMode: "model"))
            }
        }
        return points
    }

    /// The WireCAP figures' points, run; the burst at the sender rate measured in the default
    /// suite's 300,000-frame burst when there is one, else 800,000 frames/s.
    package static func wirecapFigures(measured: [PointResult], quick: Bool) -> [PointResult] {
        let rates = measured.filter { !$0.simulated && $0.point.scenario == .burst && $0.point.traffic.packets >= 300_000 }
            .flatMap(\.runs).filter { $0.sendSeconds > 0 }.map { Double($0.offered) / $0.sendSeconds }
        let machine = Machine(senderRate: rates.isEmpty ? 800_000 : Spread(rates).median)
        return runAll(wirecapFigurePoints(senderRate: machine.senderRate, quick: quick).map { ($0, machine) })
    }

    // MARK: the model

    private enum BlockState: UInt8 { case free, filling, retired, held }

    private struct Queue {
        var state: [BlockState]
        var count: [Int]
        var serial: [Int]
        var active = 0
        var nextToTake = 0
        var received: UInt64 = 0
        var captureDrops: UInt64 = 0
        var processed: UInt64 = 0
        var rolledIn: UInt64 = 0
        var offloadedOut: UInt64 = 0
        var offloadedIn: UInt64 = 0
        var poolFree: Int
        var fifo: [(owner: Int, packets: Int)] = []
        var fifoHead = 0
        var busy = false
        var sequence = 0

        var backlog: Int { fifo.count - fifoHead }
    }

    package func run() -> RunResult {
        let setup = point.setup
        // The facade is modelled as basic mode: its reader of queue i is basic's work thread i.
        let pooled = setup.engine.usesPool
        let queueCount = setup.engine == .libpcap ? 1 : setup.queues
        let perBlock = setup.framesPerBlock(frameSize: point.traffic.size)
        var queues = (0..<queueCount).map { _ in
            Queue(
                state: Array(repeating: .free, count: setup.blockCount), count: Array(repeating: 0, count: setup.blockCount),
                serial: Array(repeating: 0, count: setup.blockCount), poolFree: pooled ? setup.poolChunks : 0)
        }
        let policy = setup.engine == .advanced || setup.engine == .facadeOffload ? OffloadPolicy(threshold: setup.threshold, capacity: setup.poolChunks) : nil
        var offloading = [Bool](repeating: false, count: queueCount)
        var backlogs = [Int](repeating: 0, count: queueCount)
        let members = Array(0..<queueCount)
        var heap = EventHeap()
        let x = Double(point.workNanoseconds) * 1e-9
        let rate = point.traffic.rate ?? machine.senderRate
        let flows = max(point.traffic.flows, 1)
        let elephant = point.traffic.elephantPercent
        // Flow to queue: a seeded mix stands in for the kernel's keyed flow hash.
        func queueOf(_ flow: Int) -> Int {
            var z = UInt64(flow) &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(queueCount))
        }
        // Looked up per packet: a long sustained run offers tens of millions of them.
        let queueOfFlow = (0..<flows).map(queueOf)

        func startWorker(_ q: Int, now: Double) {
            guard !queues[q].busy else { return }
            if pooled {
                guard queues[q].backlog > 0 else { return }
                let item = queues[q].fifo[queues[q].fifoHead]
                queues[q].fifoHead += 1
                if queues[q].fifoHead > 1024 {
                    queues[q].fifo.removeFirst(queues[q].fifoHead)
                    queues[q].fifoHead = 0
                }
                queues[q].busy = true
                heap.push(now + Double(item.packets) * x, .done(queue: q, owner: item.owner, packets: item.packets, block: nil))
            } else {
                let b = queues[q].nextToTake
                guard queues[q].state[b] == .retired else { return }
                queues[q].state[b] = .held
                queues[q].busy = true
                heap.push(now + Double(queues[q].count[b]) * x, .done(queue: q, owner: q, packets: queues[q].count[b], block: b))
            }
        }

        /// Pool mode: the capture thread turns retired blocks into chunks while chunks are free.
        func capture(_ q: Int, now: Double) {
            while queues[q].state[queues[q].nextToTake] == .retired && queues[q].poolFree > 0 {
                let b = queues[q].nextToTake
                let packets = queues[q].count[b]
                queues[q].poolFree -= 1
                queues[q].state[b] = .free
                queues[q].nextToTake = (b + 1) % setup.blockCount
                var target = q
                if let policy {
                    for i in 0..<queueCount { backlogs[i] = queues[i].backlog }
                    target = members.withUnsafeBufferPointer { m in
                        backlogs.withUnsafeBufferPointer { bl in
                            offloading.withUnsafeMutableBufferPointer { o in policy.target(owner: q, members: m, backlogs: bl, offloading: o) }
                        }
                    }
                }
                if target != q {
                    queues[q].offloadedOut += 1
                    queues[target].offloadedIn += 1
                }
                queues[target].fifo.append((owner: q, packets: packets))
                startWorker(target, now: now)
            }
        }

        func retire(_ q: Int, _ b: Int, now: Double) {
            queues[q].state[b] = .retired
            if queues[q].active == b { queues[q].active = (b + 1) % setup.blockCount }
            if pooled { capture(q, now: now) } else { startWorker(q, now: now) }
        }

        /// The block a quarter of the ring ahead is free: what the kernel calls normal room.
        func hasRoom(_ q: Int) -> Bool {
            let ahead = (queues[q].active + setup.blockCount / 4) % setup.blockCount
            return queues[q].state[ahead] == .free || ahead == queues[q].active && queues[q].state[ahead] == .filling
        }

        @discardableResult
        func kernelReceive(_ q: Int, now: Double) -> Bool {
            let b = queues[q].active
            if queues[q].state[b] == .free {
                queues[q].state[b] = .filling
                queues[q].count[b] = 0
                queues[q].serial[b] += 1
                heap.push(now + machine.blockTimeout, .timeout(queue: q, block: b, serial: queues[q].serial[b]))
            }
            guard queues[q].state[b] == .filling else {
                queues[q].captureDrops += 1
                return false
            }
            queues[q].count[b] += 1
            queues[q].received += 1
            if queues[q].count[b] == perBlock { retire(q, b, now: now) }
            return true
        }

        func handle(_ event: Event, at now: Double) {
            switch event {
            case .timeout(let q, let b, let serial):
                if queues[q].state[b] == .filling && queues[q].serial[b] == serial && queues[q].count[b] > 0 { retire(q, b, now: now) }
            case .done(let q, let owner, let packets, let block):
                queues[q].busy = false
                queues[owner].processed += UInt64(packets)
                if let block {
                    queues[q].state[block] = .free
                    queues[q].nextToTake = (block + 1) % setup.blockCount
                } else {
                    queues[owner].poolFree += 1
                    capture(owner, now: now)
                }
                startWorker(q, now: now)
            }
        }

        let total = point.traffic.packets
        // Every frame the kernel accepts is processed in the end (the model drains), so the frames
        // lost in the second half are the capture drops among its arrivals.
        let half = total / 2
        var lostInSecondHalf = 0
        for i in 0..<total {
            let now = Double(i) / rate
            while let next = heap.peekTime, next <= now, let (t, event) = heap.pop() { handle(event, at: t) }
            let flow = elephant > 0 ? (i % 100 < elephant ? 0 : 1 + i % max(flows - 1, 1)) : i % flows
            var q = queueOfFlow[flow]
            if setup.engine == .rollover && !hasRoom(q) {
                // The first member after q with room (no array per packet: under a sustained
                // overload every packet looks).
                for step in 1..<max(queueCount, 1) where hasRoom((q + step) % queueCount) {
                    let other = (q + step) % queueCount
                    queues[other].rolledIn += 1
                    q = other
                    break
                }
            }
            if !kernelReceive(q, now: now) && i >= half { lostInSecondHalf += 1 }
        }
        while let (t, event) = heap.pop() { handle(event, at: t) }

        let figures = queues.enumerated().map { index, s in
            QueueFigures(
                queue: index, received: s.received, captureDrops: s.captureDrops, deliveryDrops: 0, processed: s.processed,
                inFlight: s.received - min(s.received, s.processed), offloadedOut: s.offloadedOut, offloadedIn: s.offloadedIn, rolledOver: s.rolledIn,
                cpuSeconds: 0)
        }
        return RunResult(
            offered: total, refusedBySender: 0, queues: figures, cpuSeconds: 0, sendSeconds: Double(total) / rate, duplicated: 0,
            conserved: figures.allSatisfy { $0.received == $0.processed + $0.inFlight },
            secondHalf: HalfFigures(offered: total - half, lost: lostInSecondHalf))
    }
}

private enum Event {
    case timeout(queue: Int, block: Int, serial: Int)
    case done(queue: Int, owner: Int, packets: Int, block: Int?)
}

/// A binary min-heap of timed events; ties keep insertion order.
private struct EventHeap {
    private var items: [(time: Double, order: Int, event: Event)] = []
    private var counter = 0

    var peekTime: Double? { items.first?.time }

    mutating func push(_ time: Double, _ event: Event) {
        counter += 1
        items.append((time, counter, event))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(items[i], items[parent]) {
                items.swapAt(i, parent)
                i = parent
            } else {
                break
            }
        }
    }

    mutating func pop() -> (Double, Event)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && less(items[l], items[m]) { m = l }
                if r < items.count && less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return (top.time, top.event)
    }

    private func less(_ a: (time: Double, order: Int, event: Event), _ b: (time: Double, order: Int, event: Event)) -> Bool {
        a.time < b.time || (a.time == b.time && a.order < b.order)
    }
}
