import WirecapSandbox
import WirecapSavefile

/// What `wirecap synth` is asked for. Every field has the command's default.
public struct SynthConfiguration: Sendable, Equatable {
    /// pcap or pcapng: the savefile module's formats.
    public typealias Format = SavefileFormat

    /// nil with `flows` nil: `defaultPackets`; nil with `flows` given: what the flows draw.
    public var packets: Int?
    public var flows: Int?
    public var frameSizes: FrameSizeModel
    /// Share of the packets in flow 0, 0...1; nil or 0: no elephant, flow 0 is drawn like the rest.
    public var elephantShare: Double?
    /// Share of the flows that are IPv6, 0...1.
    public var ipv6Share: Double
    public var seed: UInt64
    /// Nominal rate the timestamps are spaced at; replay can rescale it.
    public var packetsPerSecond: Double
    public var flowSizes: FlowSizeModel
    public var format: Format

    public static let defaultPackets = 1_000_000
    /// 2024-01-01 00:00:00 UTC: a fixed start, so that the same seed gives the same bytes.
    public static let startSeconds = 1_704_067_200

    public init(
        packets: Int? = nil, flows: Int? = nil, frameSizes: FrameSizeModel = .fixed(64), elephantShare: Double? = nil,
        ipv6Share: Double = 0.25, seed: UInt64 = 1, packetsPerSecond: Double = 1_000_000,
        flowSizes: FlowSizeModel = FlowSizeModel(), format: Format = .pcap
    ) {
        self.packets = packets
        self.flows = flows
        self.frameSizes = frameSizes
        self.elephantShare = elephantShare
        self.ipv6Share = ipv6Share
        self.seed = seed
        self.packetsPerSecond = packetsPerSecond
        self.flowSizes = flowSizes
        self.format = format
    }

    /// The numbers that make no sense on their own, as values naming the option.
    public func validate() throws(TrafficError) {
        if let packets, packets < 1 { throw .outOfRange(.packets, value: packets, allowed: 1...Int.max) }
        if let flows, flows < 1 || flows > FlowPlan.maximumFlows {
            throw .outOfRange(.flows, value: flows, allowed: 1...FlowPlan.maximumFlows)
        }
        if let share = elephantShare, !(0...1).contains(share) { throw .notAShare(.elephantShare, value: share) }
        if !(0...1).contains(ipv6Share) { throw .notAShare(.ipv6Share, value: ipv6Share) }
        if !(packetsPerSecond > 0) || !packetsPerSecond.isFinite { throw .notARate(.packetsPerSecond, value: packetsPerSecond) }
        if flowSizes.minimum < 1 || flowSizes.minimum > flowSizes.maximum {
            throw .outOfRange(.minimumFlowPackets, value: flowSizes.minimum, allowed: 1...max(1, flowSizes.maximum))
        }
    }
}

extension SynthConfiguration {
    /// A number as the person typed it: 2, not 2.0.
    static func text(_ value: Double) -> String {
        value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// What a synthesised trace holds, for the summary line and the tests.
public struct SynthSummary: Sendable, Equatable {
    public var packets = 0
    public var flows = 0
    /// Bytes of all records (frames without FCS), not counting file headers.
    public var bytes = 0
    public var ipv4Packets = 0
    public var ipv6Packets = 0
    public var ipv4Flows = 0
    public var ipv6Flows = 0
    public var hasElephant = false
    /// Packets of flow 0, the elephant when there is one.
    public var flow0Packets = 0
    public var largestFlow = 0
    public var largestFlowPackets = 0
    /// From the first to the last timestamp.
    public var durationNanoseconds: Int64 = 0

    public var elephantShare: Double { packets == 0 ? 0 : Double(flow0Packets) / Double(packets) }
    public var largestFlowShare: Double { packets == 0 ? 0 : Double(largestFlowPackets) / Double(packets) }
}

/// Writes a synthetic trace: numbered UDP frames over flows whose sizes follow `FlowSizeModel`
/// (Pareto, shape 1.2), interleaved by `FlowInterleaver`, sized by `FrameSizeModel`, built by
/// `TraceFrame`, timestamped at a nominal rate, into a pcap or pcapng file (`SavefileWriter`,
/// nanosecond precision).
///
/// Everything random comes from one SplitMix64 stream seeded with `seed`, drawn in a fixed
/// order (flow sizes, the IPv6 phase, then per packet its flow and its size), so a seed names a
/// trace: the same configuration and seed give the same file, byte for byte.
public final class TraceSynthesizer {
    public let configuration: SynthConfiguration
    public let plan: FlowPlan
    /// The stream as the plan left it: each `write` starts from here, so writing twice gives
    /// the same file twice.
    private let randomAfterPlan: SplitMix64
    /// Where the evenly spaced IPv6 flows start (see `isIPv6`).
    private let ipv6Phase: Double

    /// Checks the configuration and decides every flow's size; throws what cannot be met as a
    /// value. Nothing is written yet.
    public init(configuration: SynthConfiguration) throws(TrafficError) {
        try configuration.validate()
        self.configuration = configuration
        var random = SplitMix64(seed: configuration.seed)
        let packets = configuration.packets ?? (configuration.flows == nil ? SynthConfiguration.defaultPackets : nil)
        plan = try FlowPlan.make(
            packets: packets, flows: configuration.flows, elephantShare: configuration.elephantShare,
            model: configuration.flowSizes, random: &random)
        let seconds = Double(plan.packets) / configuration.packetsPerSecond
        // Timestamps are nanoseconds in a 64-bit count; a century leaves room and then some.
        guard seconds < 3.15e9 else {
            throw .timestampsOverflow(packetsPerSecond: configuration.packetsPerSecond, packets: plan.packets)
        }
        ipv6Phase = Double(random.next() >> 11) * 0x1p-53
        randomAfterPlan = random
    }

    /// IPv6 flows are spread evenly over the flow numbers, from a random phase: flow f is IPv6
    /// when floor((f + 1) s + phase) > floor(f s + phase). That makes the count round(F x s)
    /// give or take one for any F, with no per-flow memory; flow sizes do not depend on the
    /// flow number (flow 0 aside), so evenly spaced is as good as random here.
    public func isIPv6(flow: Int) -> Bool {
        let share = configuration.ipv6Share
        return (Double(flow + 1) * share + ipv6Phase).rounded(.down) > (Double(flow) * share + ipv6Phase).rounded(.down)
    }

    /// Writes the trace to `path` ("-": standard output). `progress(written, total)` is called
    /// every 65,536 packets. Errors name the path and say what to do; a file that failed is
    /// left as far as it got.
    public func write(to path: String, progress: ((Int, Int) -> Void)? = nil) throws(TrafficError) -> SynthSummary {
        let writer: SavefileWriter
        do {
            writer = try SavefileWriter(path: path, format: configuration.format, snapLength: 262_144, application: "wirecap synth")
        } catch {
            throw .outputUnwritable(error)
        }
        do { return try run(into: writer, progress: progress) } catch { throw .outputFailed(error) }
    }

    private func run(into writer: SavefileWriter, progress: ((Int, Int) -> Void)?) throws(SavefileError) -> SynthSummary {
        var summary = SynthSummary()
        summary.packets = plan.packets
        summary.flows = plan.flows
        summary.hasElephant = plan.hasElephant
        summary.flow0Packets = plan.sizes.first ?? 0
        for (flow, size) in plan.sizes.enumerated() {
            if size > summary.largestFlowPackets { (summary.largestFlow, summary.largestFlowPackets) = (flow, size) }
            if isIPv6(flow: flow) { summary.ipv6Flows += 1 } else { summary.ipv4Flows += 1 }
        }
        var interleaver = FlowInterleaver(sizes: plan.sizes)
        // A local: `inout` access to a class property would be checked at run time on every
        // call (a third of the time per packet, measured with perf).
        var random = randomAfterPlan
        let sizes = configuration.frameSizes
        let frame = UnsafeMutablePointer<UInt8>.allocate(capacity: max(sizes.largest, TraceFrame.minimumIPv6Size))
        defer { frame.deallocate() }
        let period = 1e9 / configuration.packetsPerSecond
        let total = plan.packets
        var sequence = 0
        var lastOffset: Int64 = 0
        while let flow = interleaver.next(&random) {
            let ipv6 = isIPv6(flow: flow)
            var size = sizes.draw(&random)
            if ipv6 {
                size = max(size, TraceFrame.minimumIPv6Size)
                summary.ipv6Packets += 1
            } else {
                summary.ipv4Packets += 1
            }
            TraceFrame.write(flow: flow, ipv6: ipv6, sequence: UInt64(sequence), size: size, into: frame)
            lastOffset = Int64((Double(sequence) * period).rounded())
            let seconds = SynthConfiguration.startSeconds + Int(lastOffset / 1_000_000_000)
            let nanoseconds = Int(lastOffset % 1_000_000_000)
            writer.write(bytes: UnsafeRawBufferPointer(start: frame, count: size), wireLength: size, seconds: seconds, nanoseconds: nanoseconds)
            summary.bytes += size
            sequence += 1
            if sequence & 0xFFFF == 0 { progress?(sequence, total) }
        }
        summary.durationNanoseconds = lastOffset
        try writer.close()
        progress?(sequence, total)
        return summary
    }
}
