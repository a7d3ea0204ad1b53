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
        measured.filter { $0.point.traffic.tracePath == nil && !$0.simulated && Self.models($0.point.setup) }.map { m in
            let senderRate = Spread(m.runs.map { $0.sendSeconds > 0 ? Double($0.offered) / $0.sendSeconds : 800_000 }).median
            return PointResult(point: m.point, runs: [Simulator(point: m.point, machine: Machine(senderRate: senderRate)).run()], simulated: true)
        }
    }

    /// Whether the model describes the setup: it gives every queue a worker of its own (the
    /// facade too: a reader per queue); it has no transmit side, so no forwarder.
    static func models(_ setup: EngineSetup) -> Bool {
        !setup.engine.isForwarding
    }

    /// A machine the size of the WireCAP paper's: 16 queues, 64-byte frames at 10GbE line rate
    /// (14.88 Mpps, 0.93 Mpps a queue), 0.1 s of traffic, 4 MiB rings; an even load rising past
    /// what 16 workers can do (x = 1.075 us is exactly their capacity), and one flow carrying 20 %
    /// of the traffic.
    package static func bigMachine(quick: Bool) -> [PointResult] {
        let machine = Machine(senderRate: 14_880_000)
        let packets = quick ? 300_000 : 1_488_000
        var points: [ExperimentPoint] = []
        func setup(_ engine: LabEngine, pool: Int = 64, threshold: Double = 0.5) -> EngineSetup {
            EngineSetup(engine: engine, queues: 16, blockSize: 256 << 10, blockCount: 16, poolChunks: pool, threshold: threshold)
        }
        for x in quick ? [1_600] : [1_000, 1_300, 1_600, 2_000] {
            for engine in [LabEngine.fanout, .rollover, .basic, .advanced] {
                points.append(
                    ExperimentPoint(
                        scenario: .load, variable: "x_ns", value: Double(x), series: "16q-14.88Mpps", setup: setup(engine),
                        traffic: Traffic(packets: packets, rate: 14_880_000, flows: 4096, size: 64), workNanoseconds: x, workMode: "model"))
            }
        }
        for engine in [LabEngine.fanout, .rollover, .basic, .advanced] {
            points.append(
                ExperimentPoint(
                    scenario: .imbalance, variable: "T", value: engine == .advanced ? 0.5 : 0, series: "16q-elephant=20%",
                    setup: setup(engine), traffic: Traffic(packets: packets, rate: 14_880_000, flows: 4096, size: 64, elephantPercent: 20),
                    workNanoseconds: 900, workMode: "model"))
        }
        return points.map { PointResult(point: $0, runs: [Simulator(point: $0, machine: machine).run()], simulated: true) }
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
        // Packets per block: the TPACKET3 header and headroom (86 bytes before the frame), aligned to 16.
        let perPacket = (86 + max(point.traffic.size, 60) + 15) & ~15
        let perBlock = max(1, (setup.blockSize - 48) / perPacket)
        var queues = (0..<queueCount).map { _ in
            Queue(
                state: Array(repeating: .free, count: setup.blockCount), count: Array(repeating: 0, count: setup.blockCount),
                serial: Array(repeating: 0, count: setup.blockCount), poolFree: pooled ? setup.poolChunks : 0)
        }
        let policy = setup.engine == .advanced ? OffloadPolicy(threshold: setup.threshold, capacity: setup.poolChunks) : nil
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

        func kernelReceive(_ q: Int, now: Double) {
            let b = queues[q].active
            if queues[q].state[b] == .free {
                queues[q].state[b] = .filling
                queues[q].count[b] = 0
                queues[q].serial[b] += 1
                heap.push(now + machine.blockTimeout, .timeout(queue: q, block: b, serial: queues[q].serial[b]))
            }
            guard queues[q].state[b] == .filling else {
                queues[q].captureDrops += 1
                return
            }
            queues[q].count[b] += 1
            queues[q].received += 1
            if queues[q].count[b] == perBlock { retire(q, b, now: now) }
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
        for i in 0..<total {
            let now = Double(i) / rate
            while let next = heap.peekTime, next <= now, let (t, event) = heap.pop() { handle(event, at: t) }
            let flow = elephant > 0 ? (i % 100 < elephant ? 0 : 1 + i % max(flows - 1, 1)) : i % flows
            var q = queueOf(flow)
            if setup.engine == .rollover && !hasRoom(q) {
                if let other = (1..<queueCount).map({ (q + $0) % queueCount }).first(where: hasRoom) {
                    queues[other].rolledIn += 1
                    q = other
                }
            }
            kernelReceive(q, now: now)
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
            conserved: figures.allSatisfy { $0.received == $0.processed + $0.inFlight })
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
