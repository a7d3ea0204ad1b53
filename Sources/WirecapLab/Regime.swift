import Foundation

/// What a point measures: whether its traffic is a burst that the buffers may swallow whole, or a
/// sustained load whose outcome only the workers' capacity decides. A drop rate means nothing
/// without it: 100 ms of traffic that fits the pool reports 0 % on a machine that cannot keep up.
///
/// The rule (documented in docs/experiments.md): a point is *sustained* when no queue is offered
/// more than its worker clears (the buffers never fill), or when the traffic lasts at least
/// `sustainedFactor` times the time the buffer takes to fill at the offered excess rate, so that
/// the fill is a small part of the run and the second half of the run is all steady state.
/// Anything shorter is a *burst*, reported with its length against that fill time.
///
/// The figures come from the point's nominal traffic, not from a run: flows spread evenly over
/// the queues (the elephant's flow on one of them), the synthetic work as each worker's
/// capacity, the engine's ring plus pool as its buffer. The kernel's keyed flow hash spreads real
/// flows less evenly (the model's seeded hash too), so a queue can be a few percent busier.
package struct Regime: Sendable, Equatable {
    package enum Kind: String, Sendable, Codable { case sustained, burst }

    /// Times the buffer's fill time a run must last to count as sustained.
    package static let sustainedFactor = 10.0

    /// nil when the work is not a fixed cost per packet (the ids scenario's real inspection): then
    /// no capacity is known ahead of the run, and the point is neither.
    package var kind: Kind?
    /// Seconds of traffic the sender offers.
    package var duration: Double
    /// Frames per second offered in all.
    package var offeredRate: Double
    /// Frames per second all workers clear together (nil: unknown).
    package var capacity: Double?
    /// Seconds the buffers take to fill at the excess rate (nil: no queue is overloaded).
    package var fillSeconds: Double?
    /// Frames the buffers of the overloaded queues hold.
    package var bufferFrames: Int
    /// The share of frames no buffer can save in the long run: what a steady state must lose
    /// (queues that cannot spill lose their own excess; spilling engines lose the total excess).
    package var capacityLoss: Double?

    /// A few words for a table cell.
    package var short: String {
        guard let kind else { return "capacity unknown" }
        switch kind {
        case .sustained:
            guard let fillSeconds else { return "sustained (under capacity)" }
            return String(format: "sustained (%.0fx fill)", duration / fillSeconds)
        case .burst:
            return String(format: "burst %@ vs fill %@", Self.time(duration), Self.time(fillSeconds ?? 0))
        }
    }

    /// A sentence for the report.
    package var sentence: String {
        let offered = Self.rate(offeredRate)
        guard let kind, let capacity else {
            return "Capacity unknown (the work is real inspection, not a fixed cost): \(Self.time(duration)) at \(offered); neither a burst nor a sustained point by the rule."
        }
        switch kind {
        case .sustained:
            guard let fillSeconds else {
                return "Sustained, under capacity: \(offered) offered, every queue's worker clears its share (\(Self.rate(capacity)) in all), so the buffers never fill; \(Self.time(duration)) of traffic."
            }
            return String(
                format: "Sustained: %@ of traffic, %.0f times the %@ in which %d frames of buffer fill at the excess rate (%@ offered, %@ cleared); the loss in the second half is the steady state, %.1f %% by capacity alone.",
                Self.time(duration), duration / fillSeconds, Self.time(fillSeconds), bufferFrames, offered, Self.rate(capacity), (capacityLoss ?? 0) * 100)
        case .burst:
            return String(
                format: "Burst: %@ of traffic (%@ offered, %@ cleared) against %d frames of buffer that fill in %@ at the excess rate: it measures whether the burst fits the buffers, not whether the machine keeps up (a sustained load would lose %.1f %%).",
                Self.time(duration), offered, Self.rate(capacity), bufferFrames, Self.time(fillSeconds ?? 0), (capacityLoss ?? 0) * 100)
        }
    }

    static func time(_ seconds: Double) -> String {
        seconds >= 1 ? String(format: "%.2f s", seconds) : String(format: "%.0f ms", seconds * 1000)
    }

    static func rate(_ perSecond: Double) -> String {
        perSecond >= 1e6 ? String(format: "%.2f Mpps", perSecond / 1e6) : String(format: "%.0f kpps", perSecond / 1e3)
    }
}

extension EngineSetup {
    /// Frames one block holds: the TPACKET3 header and headroom (86 bytes before the frame), the
    /// frame, aligned to 16; the block's own header first. The discrete-event model uses it too.
    package func framesPerBlock(frameSize: Int) -> Int {
        let perPacket = (86 + max(frameSize, 60) + 15) & ~15
        return max(1, (blockSize - 48) / perPacket)
    }

    /// Frames one queue can hold before the kernel drops: its ring, and for wirecap its pool.
    package func bufferFrames(frameSize: Int) -> Int {
        framesPerBlock(frameSize: frameSize) * (blockCount + (engine.usesPool ? poolChunks : 0))
    }

    /// Whether a full queue's excess can go to another queue's worker (the kernel's rollover,
    /// wirecap's buddy offloading): then only the total load counts.
    package var spills: Bool { engine == .rollover || engine == .advanced || engine == .facadeOffload }

    /// Workers that share the load: libpcap has one socket and one reading thread.
    package var workers: Int { engine == .libpcap ? 1 : queues }
}

extension ExperimentPoint {
    /// What this point measures, with the sender at `senderRate` frames/s when it goes flat out
    /// (the rate measured in the point's runs, or the model's machine).
    package func regime(senderRate: Double) -> Regime {
        let rate = traffic.rate ?? senderRate
        let duration = rate > 0 ? Double(traffic.packets) / rate : 0
        let workers = setup.workers
        // The nominal split: flows evenly over the queues, the elephant's flow on queue 0.
        let elephant = Double(traffic.elephantPercent) / 100
        let shares = (0..<workers).map { q in (1 - elephant) / Double(workers) + (q == 0 ? elephant : 0) }
        let loads = shares.map { $0 * rate }
        let bufferPerQueue = setup.bufferFrames(frameSize: traffic.size)
        guard workNanoseconds > 0, workMode != ExperimentPoint.idsWorkMode else {
            return Regime(kind: nil, duration: duration, offeredRate: rate, capacity: nil, fillSeconds: nil, bufferFrames: bufferPerQueue * workers, capacityLoss: nil)
        }
        let perWorker = 1e9 / Double(workNanoseconds)
        let capacity = perWorker * Double(workers)
        var fill: Double? = nil
        var buffer = 0
        var lost = 0.0
        if setup.spills || workers == 1 {
            if rate > capacity {
                buffer = bufferPerQueue * workers
                fill = Double(buffer) / (rate - capacity)
                lost = rate - capacity
            }
        } else {
            // Each overloaded queue fills on its own; the slowest to fill decides.
            for load in loads where load > perWorker {
                buffer += bufferPerQueue
                fill = max(fill ?? 0, Double(bufferPerQueue) / (load - perWorker))
                lost += load - perWorker
            }
        }
        let longEnough = fill.map { duration >= Regime.sustainedFactor * $0 } ?? true
        let kind: Regime.Kind = longEnough ? .sustained : .burst
        return Regime(
            kind: kind, duration: duration, offeredRate: rate, capacity: capacity, fillSeconds: fill, bufferFrames: buffer,
            capacityLoss: rate > 0 ? lost / rate : 0)
    }
}
