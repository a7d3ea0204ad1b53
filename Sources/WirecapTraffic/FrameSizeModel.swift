import Foundation
import WirecapSandbox

/// Frame sizes of a synthetic trace: a table of sizes, one of which each packet draws with equal
/// probability (so a size listed twice is twice as likely).
///
/// Sizes are bytes of the pcap record, the Ethernet frame without its 4-byte frame check
/// sequence, as everywhere else in wirecap (`wirecap send --size 64` sends 64-byte records).
/// IMIX is the exception that proves the rule: its 64/594/1518 are sizes on the wire, where
/// 64 and 1518 are Ethernet's smallest and largest frames with their FCS and 594 is a 576-byte
/// IP datagram plus the 14-byte header and FCS. A capture has no FCS, so the IMIX records are
/// 60, 590 and 1514 bytes: IP packets of 46, 576 and 1500 bytes, which fit a 1500-byte MTU and
/// so can be replayed on an ordinary interface.
public struct FrameSizeModel: Sendable, Equatable {
    /// The smallest record that holds Ethernet, IPv4, UDP and the 16-byte payload header.
    /// IPv6 frames need `TraceFrame.minimumIPv6Size`; smaller sizes grow to it for IPv6 flows.
    public static let minimumSize = SequencedFrame.minimumSize
    /// Jumbo frames, as `wirecap send` allows.
    public static let maximumSize = 9000

    /// Simple IMIX, 7:4:1 by packet count (as on the wire: 64, 594, 1518 bytes with FCS).
    public static let imix = FrameSizeModel(sizes: Array(repeating: 60, count: 7) + Array(repeating: 590, count: 4) + [1514], name: "imix")

    public let sizes: [Int]
    /// What was asked for: a number, `imix`, or the file's path.
    public let name: String

    public init(sizes: [Int], name: String) {
        precondition(!sizes.isEmpty, "a frame size table needs at least one size")
        self.sizes = sizes
        self.name = name
    }

    public static func fixed(_ size: Int) -> FrameSizeModel { FrameSizeModel(sizes: [size], name: String(size)) }

    /// A `--size` argument: a number of bytes, `imix`, or the path of a text file with one frame
    /// size per line (blank lines and lines starting with # are skipped). A number wins over a
    /// file of the same name; write `./64` for the file.
    public static func parse(_ spec: String) throws(TrafficError) -> FrameSizeModel {
        if let size = Int(spec) {
            guard (minimumSize...maximumSize).contains(size) else {
                throw .outOfRange(.frameSize, value: size, allowed: minimumSize...maximumSize)
            }
            return fixed(size)
        }
        if spec.lowercased() == "imix" { return imix }
        return try load(path: spec)
    }

    public static func load(path: String) throws(TrafficError) -> FrameSizeModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unknownFrameSize(path)
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw .frameSizeFileUnreadable(path: path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .frameSizeFileNotText(path: path)
        }
        var sizes: [Int] = []
        // Lines end in "\n" or "\r\n" (one Character in Swift, so both are named), which keeps
        // line numbers the same as an editor shows.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let size = Int(line) else { throw .frameSizeLineInvalid(path: path, line: index + 1, text: line) }
            guard (minimumSize...maximumSize).contains(size) else {
                throw .frameSizeLineOutOfRange(path: path, line: index + 1, size: size)
            }
            sizes.append(size)
        }
        guard !sizes.isEmpty else {
            throw .frameSizeFileEmpty(path: path)
        }
        return FrameSizeModel(sizes: sizes, name: path)
    }

    /// One packet's size. A fixed size draws nothing, so a fixed-size trace's flow order does not
    /// depend on the size table.
    @inline(__always)
    public func draw(_ random: inout SplitMix64) -> Int {
        sizes.count == 1 ? sizes[0] : sizes[Int(random.next(below: UInt64(sizes.count)))]
    }

    public var largest: Int { sizes.max()! }
}
