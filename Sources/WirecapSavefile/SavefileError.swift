/// A savefile that cannot be opened, read or written: the path, what went wrong (libpcap's or
/// the system's own words, without the path they would repeat) and what to do about it.
///
/// The message is one line: `trace.pcap: truncated dump file; ... (the file is truncated or
/// corrupt)`. Tools put their own words in front (`cannot replay ...`) or swap the hint for one
/// that names their flag.
public struct SavefileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public let hint: String

    public init(path: String, reason: String, hint: String) {
        self.path = path
        self.reason = reason
        self.hint = hint
    }

    public var description: String { "\(path): \(reason) (\(hint))" }

    /// A record refused for its timestamp alone (`SavefileReader`): its bytes were intact, and
    /// reading on gives the records after it, unlike a truncated or corrupt file.
    public var isDamagedTimestamp: Bool { hint == Self.damagedTimestamp }

    /// libpcap names the path at the front of the errors it reports for a file it could not
    /// open; the error already carries the path.
    static func reason(_ message: String, path: String) -> String {
        message.hasPrefix(path + ": ") ? String(message.dropFirst(path.count + 2)) : message
    }

    static let readableFile = "give a readable pcap or pcapng file"
    static let damagedFile = "the file is truncated or corrupt"
    static let damagedTimestamp = "the file is corrupt: give an intact capture, or use the records before this one"
    static let writablePath = "choose a writable path"
    static let freeSpace = "check free space on the file system"
}
