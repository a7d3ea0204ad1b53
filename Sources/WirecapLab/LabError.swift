import WirecapSavefile

/// An experiment problem as a value: the trace, interface or plot script involved, and what the
/// tool underneath said. `description` is one line, naming the thing and the fix.
package enum LabError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A trace the reader cannot read.
    case traceUnreadable(SavefileError)
    /// A trace of a link type other than Ethernet (`linkType` is the DLT).
    case traceNotEthernet(path: String, linkType: Int32)
    case traceEmpty(path: String)
    /// pcap_create refused the interface; `reason` is libpcap's error buffer.
    case libpcapOpenFailed(interface: String, reason: String)
    /// pcap_activate failed; `reason` is pcap_geterr.
    case libpcapActivateFailed(interface: String, reason: String)
    /// A forwarder of the fwd scenario did not start or stop as it should; `reason` is what it said.
    case forwarderFailed(engine: String, reason: String)
    /// A forwarder of the fwd scenario that is not installed.
    case forwarderMissing(engine: String)
    /// A half-rate point of the fwd scenario with no flat-out bridge run before it to take the rate from.
    case noCeilingRun(point: String)
    case gnuplotMissing
    /// gnuplot exited non-zero on `script`; `reason` is the last line it printed.
    case gnuplotFailed(script: String, reason: String)

    /// `description`, as the field was called before these errors were values.
    package var message: String { description }

    package var description: String {
        switch self {
        case .traceUnreadable(let error):
            return "cannot read the trace \(error)"
        case .traceNotEthernet(let path, let linkType):
            return "\(path) is not an Ethernet capture (link type \(linkType)): give an Ethernet pcap"
        case .traceEmpty(let path):
            return "\(path) holds no packets: give a trace with traffic"
        case .libpcapOpenFailed(let interface, let reason):
            return "libpcap cannot open \(interface): \(reason)"
        case .libpcapActivateFailed(let interface, let reason):
            return "libpcap cannot capture on \(interface): \(reason)"
        case .forwarderFailed(let engine, let reason):
            return "\(engine) could not forward in the sandbox: \(reason)"
        case .forwarderMissing(let engine):
            return "\(engine) is not installed: install it (apt-get install \(engine)) or leave it out"
        case .noCeilingRun(let point):
            return "\(point): the rate is a share of the bridge's flat-out rate, and no flat-out bridge run came first: run the fwd scenario whole"
        case .gnuplotMissing:
            return "gnuplot is not installed, so no plots were drawn (apt-get install gnuplot-nox); the JSON, CSV and report are written"
        case .gnuplotFailed(let script, let reason):
            return "gnuplot failed on \(script): \(reason)"
        }
    }
}
