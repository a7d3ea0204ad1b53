import WirecapEngine
import WirecapPcap

/// A wirecap device name as a libpcap program is given it: `wirecap:IFACE`, with settings after
/// a second colon, `wirecap:eth0:queues=4,pool=64,offload=0.5`. Any other name is not wirecap's
/// and goes to the real libpcap untouched.
struct DeviceName: Equatable {
    static let prefix = "wirecap:"

    /// The interface (`eth0`).
    var interface: String
    /// The settings, applied over pcap_create's defaults (libpcap's pcap_set_* calls apply on top).
    var queues: Int?
    var poolChunks: Int?
    var offloadThreshold: Double?
    var blockSize: Int?
    var fanout: FanoutMode?

    /// Whether libpcap would be asked for `name` at all: names without the prefix never are.
    static func isWirecap(_ name: String) -> Bool { name.hasPrefix(prefix) }

    /// Parses `name` (which has the prefix), or says in one line what is wrong and what works.
    init(parsing name: String) throws(PcapError) {
        let rest = name.dropFirst(Self.prefix.count)
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let interface = String(parts[0])
        guard !interface.isEmpty else {
            throw PcapError("\(name): no interface after \"wirecap:\" (use wirecap:IFACE, e.g. wirecap:eth0)")
        }
        if interface.contains("@") {
            throw PcapError(
                "\(name): one queue per process (IFACE@i) is not supported: open wirecap:\(interface.split(separator: "@")[0]):queues=N and read every queue in one handle")
        }
        self.interface = interface
        guard parts.count == 2 else { return }
        for setting in parts[1].split(separator: ",") {
            let pair = setting.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { throw Self.unknown(name, String(setting)) }
            let key = String(pair[0])
            let value = String(pair[1])
            switch key {
            case "queues": queues = try Self.count(name, key, value)
            case "pool": poolChunks = try Self.count(name, key, value)
            case "block": blockSize = try Self.count(name, key, value)
            case "offload":
                guard let t = Double(value), (0...1).contains(t) else {
                    throw PcapError("\(name): offload=\(value) is not a threshold in 0...1 (e.g. offload=0.5)")
                }
                offloadThreshold = t
            case "fanout":
                guard let mode = FanoutMode(rawValue: value) else {
                    throw PcapError("\(name): fanout=\(value) is not a fanout mode (hash, cpu, qm or lb)")
                }
                fanout = mode
            default: throw Self.unknown(name, String(setting))
            }
        }
    }

    static func unknown(_ name: String, _ setting: String) -> PcapError {
        PcapError("\(name): unknown setting \"\(setting)\" (settings: queues=N, pool=CHUNKS, offload=0...1, block=BYTES, fanout=hash|cpu|qm|lb)")
    }

    static func count(_ name: String, _ key: String, _ value: String) throws(PcapError) -> Int {
        guard let n = Int(value), n > 0 else { throw PcapError("\(name): \(key)=\(value) must be a positive whole number") }
        return n
    }

    /// The facade's options: pcap_create's defaults with these settings over them.
    func apply(to options: inout PcapHandle.LiveOptions) {
        if let queues { options.queues = queues }
        if let poolChunks { options.poolChunks = poolChunks }
        if let offloadThreshold { options.offloadThreshold = offloadThreshold }
        if let blockSize { options.blockSize = blockSize }
        if let fanout { options.fanout = fanout }
    }
}
