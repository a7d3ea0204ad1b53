import WirecapEngine

/// An error of the pcap facade, carrying libpcap's own message where there is one. Where the
/// engine refused, `underlying` keeps its error as a value and `message` is derived from it in
/// the facade's terms (`LiveOptions.blockSize`, not the engine's `ring.blockSize`), as
/// `pcap_geterr` would say it.
public struct PcapError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// The engine's error this one reports; nil for libpcap's and the facade's own.
    public let underlying: CaptureError?

    public init(_ message: String) {
        self.message = message
        self.underlying = nil
    }

    /// The engine's `error`, with each configuration parameter named as the facade sets it.
    public init(engine error: CaptureError) {
        self.message = error.description(naming: \.liveOptionName)
        self.underlying = error
    }

    public var description: String { message }
}

extension ConfigurationError.Parameter {
    /// What sets this parameter through the facade: a `LiveOptions` property, the device given
    /// to `openLive`, or what the facade derives it from. The facade's one naming function.
    public var liveOptionName: String {
        switch self {
        case .interface: "device"
        case .queues: "LiveOptions.queues"
        case .blockSize: "LiveOptions.blockSize"
        case .blockCount: "the block count (LiveOptions.bufferSize / blockSize)"
        case .blockTimeout: "the block timeout (from LiveOptions.timeoutMilliseconds)"
        case .snapLength: "LiveOptions.snapLength"
        case .poolChunks: "LiveOptions.poolChunks"
        case .lockMemory: "the pool's memory lock"
        case .offloadThreshold: "LiveOptions.offloadThreshold"
        case .buddyGroups: "the buddy groups"
        case .filter: "LiveOptions.filter"
        }
    }
}
