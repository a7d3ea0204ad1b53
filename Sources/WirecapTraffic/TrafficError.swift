import WirecapSavefile

/// A traffic problem as a value: synthesis options out of range, a flow plan that cannot be met,
/// a frame-size table or a trace that cannot be used, with the numbers, paths and lines involved
/// (and the savefile's own error where reading or writing one failed).
///
/// `description` is one line that names options as `SynthConfiguration` spells them; the command
/// line renders the same value with its flags through `description(naming:)`.
public enum TrafficError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An option of a synthetic trace, by what it means rather than by one spelling of it.
    public enum Parameter: String, CaseIterable, Sendable {
        case packets, flows, frameSize, elephantShare, ipv6Share, packetsPerSecond, minimumFlowPackets
        /// The path a trace is written to.
        case output

        /// The parameter's place in `SynthConfiguration` (the output: `write(to:)`'s path).
        public var configurationName: String {
            switch self {
            case .packets: "packets"
            case .flows: "flows"
            case .frameSize: "frameSizes"
            case .elephantShare: "elephantShare"
            case .ipv6Share: "ipv6Share"
            case .packetsPerSecond: "packetsPerSecond"
            case .minimumFlowPackets: "flowSizes.minimum"
            case .output: "path"
            }
        }
    }

    /// A whole number outside `allowed` (an upper bound of `Int.max`: no upper bound).
    case outOfRange(Parameter, value: Int, allowed: ClosedRange<Int>)
    /// A share outside 0...1.
    case notAShare(Parameter, value: Double)
    /// A rate that is not positive and finite.
    case notARate(Parameter, value: Double)
    /// `packets` spaced at `packetsPerSecond` last longer than the timestamps can count.
    case timestampsOverflow(packetsPerSecond: Double, packets: Int)
    /// `packets` cannot give each of `flows` flows `minimum` packets.
    case packetsCannotFillFlows(packets: Int, flows: Int, minimum: Int)
    /// An elephant share below 1 with a single flow.
    case elephantNeedsFlows(share: Double)
    /// A share of 1 that leaves nothing for `otherFlows` more flows.
    case elephantLeavesNoPackets(share: Double, otherFlows: Int)
    /// The elephant leaves `rest` of `packets`, too few for `otherFlows` flows of `minimum`.
    case elephantLeavesTooFew(share: Double, rest: Int, packets: Int, otherFlows: Int, minimum: Int)
    /// With `flows` alone, the share asks for more than `limit` packets.
    case elephantTooLarge(share: Double, flows: Int, limit: Int)
    /// The share of `packets` rounds to no packet at all.
    case elephantUnderOnePacket(share: Double, packets: Int)
    /// A frame-size argument that is no number, not imix, and no existing file.
    case unknownFrameSize(String)
    /// A frame-size file that cannot be read (or is a directory).
    case frameSizeFileUnreadable(path: String)
    /// A frame-size file that is not UTF-8 text.
    case frameSizeFileNotText(path: String)
    /// Line `line` of a frame-size file holds `text`, which is not a whole number.
    case frameSizeLineInvalid(path: String, line: Int, text: String)
    /// Line `line` of a frame-size file holds a size outside `FrameSizeModel`'s range.
    case frameSizeLineOutOfRange(path: String, line: Int, size: Int)
    /// A frame-size file with no sizes in it.
    case frameSizeFileEmpty(path: String)
    /// A trace the reader cannot read.
    case traceUnreadable(SavefileError)
    /// A trace of a link type other than Ethernet (`linkType` is the DLT).
    case traceNotEthernet(path: String, linkType: Int32)
    /// A trace with no packets.
    case traceEmpty(path: String)
    /// Record `record` (1-based) of a trace has a timestamp replay cannot schedule: a time (or a
    /// span from the first record) past `TraceLoader.longestSpan`. (A sub-second field of a second
    /// or more is refused by the reader: `traceUnreadable`.)
    case traceTimestampOutOfRange(path: String, record: Int, seconds: Int, nanoseconds: Int)
    /// The output could not be opened for writing.
    case outputUnwritable(SavefileError)
    /// Writing the output failed part way.
    case outputFailed(SavefileError)

    /// `description`, as the field was called before these errors were values.
    public var message: String { description }

    public var description: String { description(naming: \.configurationName) }

    /// One line in the words of the front end that `name` spells options for.
    public func description(naming name: (Parameter) -> String) -> String {
        let text = SynthConfiguration.text
        func packets(_ count: Int) -> String { count == 1 ? "packet" : "packets" }
        let sizes = "\(FrameSizeModel.minimumSize) to \(FrameSizeModel.maximumSize)"
        switch self {
        case .outOfRange(let parameter, let value, let allowed):
            let range = allowed.upperBound == Int.max ? "give \(allowed.lowerBound) or more" : "use \(allowed.lowerBound) to \(allowed.upperBound)"
            let unit = parameter == .frameSize ? " bytes, imix, or a file of sizes" : ""
            return "\(name(parameter)) \(value) is out of range: \(range)\(unit)"
        case .notAShare(let parameter, let value):
            let of = parameter == .ipv6Share ? "flows" : "packets"
            let typical = parameter == .ipv6Share ? "0.25" : "0.8"
            return "\(name(parameter)) \(text(value)) is out of range: give a share of the \(of) from 0 to 1, e.g. \(typical)"
        case .notARate(let parameter, let value):
            return "\(name(parameter)) \(text(value)) is out of range: give a positive rate, e.g. 1000000"
        case .timestampsOverflow(let rate, let count):
            return "\(name(.packetsPerSecond)) \(text(rate)) spreads \(count) packets over more than a century: raise \(name(.packetsPerSecond))"
        case .packetsCannotFillFlows(let count, let flows, let minimum):
            let (needed, overflow) = flows.multipliedReportingOverflow(by: minimum)
            return "\(name(.packets)) \(count) cannot fill \(name(.flows)) \(flows) of at least \(minimum) \(packets(minimum)) each: give \(name(.packets)) \(overflow ? "\(flows) x \(minimum)" : "\(needed)") or more, or fewer \(name(.flows))"
        case .elephantNeedsFlows(let share):
            return "\(name(.elephantShare)) \(text(share)) needs \(name(.flows)) 2 or more (a single flow carries every packet): give more \(name(.flows)) or drop the share"
        case .elephantLeavesNoPackets(let share, let others):
            return "\(name(.elephantShare)) \(text(share)) leaves no packets for the other \(others) flows: give a share below 1, or \(name(.flows)) 1"
        case .elephantLeavesTooFew(let share, let rest, let count, let others, let minimum):
            return "\(name(.elephantShare)) \(text(share)) leaves \(rest) of \(name(.packets)) \(count) for \(others) other flows of at least \(minimum) \(packets(minimum)): lower the share, give more \(name(.packets)) or fewer \(name(.flows))"
        case .elephantTooLarge(let share, let flows, let limit):
            return "\(name(.elephantShare)) \(text(share)) with \(name(.flows)) \(flows) asks for more than \(limit) packets: give \(name(.packets)) too, or a lower share"
        case .elephantUnderOnePacket(let share, let count):
            return "\(name(.elephantShare)) \(text(share)) of \(name(.packets)) \(count) is less than one packet: raise the share or \(name(.packets))"
        case .unknownFrameSize(let spec):
            return "\(name(.frameSize)) \(spec) is not a size, imix, or an existing file: give 64 (bytes), imix, or a file with one frame size per line"
        case .frameSizeFileUnreadable(let path):
            return "\(name(.frameSize)) \(path): cannot read the file (give a readable text file with one frame size per line)"
        case .frameSizeFileNotText(let path):
            return "\(name(.frameSize)) \(path): not a text file (give one frame size in bytes per line)"
        case .frameSizeLineInvalid(let path, let line, let content):
            return "\(name(.frameSize)) \(path) line \(line): '\(content.prefix(40))' is not a frame size (give one whole number of bytes per line, \(sizes))"
        case .frameSizeLineOutOfRange(let path, let line, let size):
            let problem =
                size < FrameSizeModel.minimumSize
                ? "cannot hold Ethernet, IPv4, UDP and the 16-byte sequence header"
                : "is more than a \(FrameSizeModel.maximumSize)-byte jumbo frame"
            return "\(name(.frameSize)) \(path) line \(line): \(size) bytes \(problem) (use \(sizes) bytes)"
        case .frameSizeFileEmpty(let path):
            return "\(name(.frameSize)) \(path) has no frame sizes: give one size in bytes per line"
        case .traceUnreadable(let error):
            return "cannot replay \(error)"
        case .traceNotEthernet(let path, let linkType):
            return "cannot replay \(path): its link type is \(LinkType.name(linkType)), not Ethernet (replay sends Ethernet frames: give a capture made on an Ethernet interface)"
        case .traceEmpty(let path):
            return "cannot replay \(path): the file holds no packets (give a capture with at least one packet)"
        case .traceTimestampOutOfRange(let path, let record, let seconds, _):
            return "cannot replay \(path): record \(record) has a damaged timestamp: its time \(seconds) s is more than a century from the first record's (give a capture whose timestamps are intact)"
        case .outputUnwritable(let error):
            return "cannot write \(error.path): \(error.reason) (choose a writable \(name(.output)))"
        case .outputFailed(let error):
            return "cannot write \(error)"
        }
    }
}
