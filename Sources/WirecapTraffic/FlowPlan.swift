/// How many packets each flow of a synthetic trace gets, decided before any frame is written.
///
/// Flow numbers are indices: flow 0 is the elephant when there is one. What is given decides
/// what follows from the model:
/// - `--packets N --flows F`: F flows; each gets the model's minimum, and the rest of the N
///   packets is shared in proportion to one Pareto draw per flow, so the sizes keep the model's
///   shape and add up to exactly N.
/// - `--flows F` alone: each flow's size is a draw; the packet count is their sum.
/// - `--packets N` alone: flows are drawn until they hold N packets; the last is cut to what
///   remains. Past `maximumFlows` the drawn sizes are scaled up to N instead.
/// With `--elephant-share S`, flow 0 gets round(S x N) packets and the other flows share the
/// rest as above; with `--flows` alone, the other F - 1 flows draw their sizes (M packets in all)
/// and flow 0 gets round(S x M / (1 - S)). The elephant's count is set, not drawn, so the share
/// achieved is S to within half a packet.
public struct FlowPlan: Sendable, Equatable {
    /// Packets of each flow, by flow number; every flow has at least one.
    public var sizes: [Int]
    /// Whether flow 0 was given `--elephant-share`.
    public var hasElephant: Bool

    public var packets: Int { sizes.reduce(0, +) }
    public var flows: Int { sizes.count }

    /// The flow number is 4 bytes in the payload, but every flow also needs its own 5-tuple
    /// (see `TraceFrame`): 65,536 addresses x 256 source ports. The planner also holds one
    /// machine word per flow, 128 MiB at this bound.
    public static let maximumFlows = 1 << 24
    /// A bound on what `--flows` alone with a share near 1 can ask for (a trace of 10^12
    /// packets would be tens of terabytes).
    public static let maximumPackets = 1_000_000_000_000

    public init(sizes: [Int], hasElephant: Bool) {
        self.sizes = sizes
        self.hasElephant = hasElephant
    }

    /// The plan for the given counts, or what makes them impossible as a value.
    public static func make(
        packets: Int?, flows: Int?, elephantShare: Double?, model: FlowSizeModel, random: inout SplitMix64
    ) throws(TrafficError) -> FlowPlan {
        let share = elephantShare ?? 0
        guard share > 0 else {
            switch (packets, flows) {
            case let (n?, f?):
                guard n >= f * model.minimum else {
                    throw .packetsCannotFillFlows(packets: n, flows: f, minimum: model.minimum)
                }
                return FlowPlan(sizes: apportion(n, over: f, model: model, random: &random), hasElephant: false)
            case let (nil, f?):
                return FlowPlan(sizes: drawn(f, model: model, random: &random), hasElephant: false)
            case let (n, nil):
                return FlowPlan(sizes: fill(n ?? 1, model: model, random: &random), hasElephant: false)
            }
        }
        if flows == 1 {
            guard share == 1 else {
                throw .elephantNeedsFlows(share: share)
            }
            return FlowPlan(sizes: [packets ?? model.draw(&random)], hasElephant: true)
        }
        switch (packets, flows) {
        case let (n?, f?):
            guard share < 1 else { throw .elephantLeavesNoPackets(share: share, otherFlows: f - 1) }
            let elephant = try elephantPackets(share, of: n)
            let rest = n - elephant
            guard rest >= (f - 1) * model.minimum else {
                throw .elephantLeavesTooFew(share: share, rest: rest, packets: n, otherFlows: f - 1, minimum: model.minimum)
            }
            return FlowPlan(sizes: [elephant] + apportion(rest, over: f - 1, model: model, random: &random), hasElephant: true)
        case let (nil, f?):
            guard share < 1 else { throw .elephantLeavesNoPackets(share: share, otherFlows: f - 1) }
            let others = drawn(f - 1, model: model, random: &random)
            let wanted = (share * Double(others.reduce(0, +)) / (1 - share)).rounded()
            guard wanted + Double(others.reduce(0, +)) <= Double(maximumPackets) else {
                throw .elephantTooLarge(share: share, flows: f, limit: maximumPackets)
            }
            return FlowPlan(sizes: [max(1, Int(wanted))] + others, hasElephant: true)
        case let (n, nil):
            let n = n ?? 1
            if share == 1 { return FlowPlan(sizes: [n], hasElephant: true) }
            let elephant = try elephantPackets(share, of: n)
            return FlowPlan(sizes: [elephant] + fill(n - elephant, model: model, random: &random, flowLimit: maximumFlows - 1), hasElephant: true)
        }
    }

    static func elephantPackets(_ share: Double, of packets: Int) throws(TrafficError) -> Int {
        let elephant = Int((share * Double(packets)).rounded())
        guard elephant >= 1 else { throw .elephantUnderOnePacket(share: share, packets: packets) }
        return elephant
    }

    /// One drawn size per flow, for `--flows` without `--packets`.
    static func drawn(_ flows: Int, model: FlowSizeModel, random: inout SplitMix64) -> [Int] {
        var sizes = [Int]()
        sizes.reserveCapacity(flows)
        for _ in 0..<flows { sizes.append(model.draw(&random)) }
        return sizes
    }

    /// `packets` over `flows`: the minimum each, the rest in proportion to a Pareto weight per
    /// flow. Rounding the running total (not each share) makes the sizes add up exactly, with
    /// every flow within one packet of its exact share, in one pass and without sorting.
    static func apportion(_ packets: Int, over flows: Int, model: FlowSizeModel, random: inout SplitMix64) -> [Int] {
        var weights = [Double]()
        weights.reserveCapacity(flows)
        for _ in 0..<flows { weights.append(model.weight(&random)) }
        return apportion(packets, weights: weights, minimum: model.minimum)
    }

    static func apportion(_ packets: Int, weights: [Double], minimum: Int) -> [Int] {
        let extra = packets - weights.count * minimum
        let total = weights.reduce(0, +)
        var sizes = [Int]()
        sizes.reserveCapacity(weights.count)
        var running = 0.0
        var given = 0
        for (index, weight) in weights.enumerated() {
            running += weight
            // The last flow takes whatever is left, so floating-point rounding cannot lose a packet.
            let upTo = index == weights.count - 1 ? extra : min(extra, Int((running / total * Double(extra)).rounded()))
            sizes.append(minimum + max(0, upTo - given))
            given = max(given, upTo)
        }
        return sizes
    }

    /// Draws flows until they hold `packets`; the last flow is cut to what remains. Past
    /// `flowLimit` flows, the drawn sizes are used as weights for `packets` instead.
    static func fill(_ packets: Int, model: FlowSizeModel, random: inout SplitMix64, flowLimit: Int = maximumFlows) -> [Int] {
        var sizes = [Int]()
        var total = 0
        while total < packets {
            guard sizes.count < flowLimit else {
                return apportion(packets, weights: sizes.map(Double.init), minimum: 0)
            }
            let size = min(model.draw(&random), packets - total)
            sizes.append(size)
            total += size
        }
        return sizes
    }
}
