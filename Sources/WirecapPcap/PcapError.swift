/// An error of the pcap facade, carrying libpcap's own message where there is one.
public struct PcapError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
