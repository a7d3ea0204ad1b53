import WirecapEngine

/// The experiments of the WireCAP paper, reshaped for a sandbox on one machine.
package enum ScenarioKind: String, CaseIterable, Sendable, Codable {
    /// Drops against burst length and pool size R: one queue, a burst sent flat out.
    case burst
    /// Drops per queue against elephant share and threshold T: two hash queues, one big flow.
    case imbalance
    /// Drops against per-packet work x at a fixed rate.
    case load
    /// A real trace from ../shared/traces, looped, at a chosen rate.
    case trace
    /// The same trace with the example IDS (wirecap-ids's inspector) as the per-packet work,
    /// at rising rates: real code instead of a synthetic cost.
    case ids
    /// Forwarders compared on the same traffic through three namespaces (sender -> forwarder ->
    /// sink): delivered rate, loss, CPU per forwarded frame, per-flow reordering and one-way
    /// latency, flat out and at half the sender's flat-out rate.
    case fwd
}

/// The traffic of one point.
package struct Traffic: Sendable, Codable, Equatable {
    package var packets: Int
    /// Frames per second; nil: flat out.
    package var rate: Double?
    package var flows: Int
    package var size: Int
    package var elephantPercent: Int
    /// Trace scenario: the file replayed (looped up to `packets`).
    package var tracePath: String?

    package init(packets: Int, rate: Double?, flows: Int, size: Int, elephantPercent: Int = 0, tracePath: String? = nil) {
        self.packets = packets
        self.rate = rate
        self.flows = flows
        self.size = size
        self.elephantPercent = elephantPercent
        self.tracePath = tracePath
    }
}

/// One engine at one setting of one scenario: what a run measures and a plot shows as one bar or
/// point.
package struct ExperimentPoint: Sendable, Codable, Equatable {
    package var scenario: ScenarioKind
    /// The swept variable and its value (burst length, pool size, T, work ns, ...).
    package var variable: String
    package var value: Double
    /// A second variable that tells series apart (burst length, elephant share), if any.
    package var series: String
    package var setup: EngineSetup
    package var traffic: Traffic
    package var workNanoseconds: Int
    package var workMode: String

    package init(
        scenario: ScenarioKind, variable: String, value: Double, series: String, setup: EngineSetup, traffic: Traffic, workNanoseconds: Int,
        workMode: String
    ) {
        self.scenario = scenario
        self.variable = variable
        self.value = value
        self.series = series
        self.setup = setup
        self.traffic = traffic
        self.workNanoseconds = workNanoseconds
        self.workMode = workMode
    }

    package var work: SyntheticWork {
        SyntheticWork(nanosecondsPerPacket: workNanoseconds, mode: SyntheticWork.Mode(rawValue: workMode) ?? .sleep)
    }

    /// A short name for progress lines and tables.
    package var label: String {
        var name = setup.engine.title
        if setup.engine.usesPool { name += " R=\(setup.poolChunks)" }
        if setup.engine == .advanced || setup.engine == .fwdOffload || setup.engine == .facadeOffload { name += " T=\(setup.threshold)" }
        return "\(scenario.rawValue) \(series) \(variable)=\(Self.format(value)): \(name)"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
