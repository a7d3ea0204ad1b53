/// A pcap file that cannot be opened, read or written, with libpcap's own explanation.
public struct TraceError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public let hint: String

    public init(path: String, reason: String, hint: String) {
        self.path = path
        self.reason = reason
        self.hint = hint
    }

    public var description: String { "\(path): \(reason) (\(hint))" }
}
