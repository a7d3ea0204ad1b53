// Savefiles written byte by byte, to hold what no writer would write (damaged timestamps): for
// the reader's unit tests and for the tools that read through it.

/// A 64-byte Ethernet frame: what the records carry does not matter, only their times.
public let handMadeFrame = [UInt8](repeating: 0xFF, count: 6) + [UInt8](repeating: 0x02, count: 6) + [0x08, 0x00] + [UInt8](repeating: 0, count: 50)

public func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
public func le16(_ value: UInt16) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

/// A classic pcap file (little-endian, Ethernet) with one record per (seconds, fraction) pair;
/// the fraction in microseconds, or nanoseconds with `nanosecond` (the other magic number).
public func handMadePcap(_ stamps: [(seconds: UInt32, fraction: UInt32)], nanosecond: Bool = false) -> [UInt8] {
    var bytes = le32(nanosecond ? 0xA1B2_3C4D : 0xA1B2_C3D4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65535) + le32(1)
    for stamp in stamps {
        bytes += le32(stamp.seconds) + le32(stamp.fraction) + le32(UInt32(handMadeFrame.count)) + le32(UInt32(handMadeFrame.count)) + handMadeFrame
    }
    return bytes
}

/// A pcapng file: a section header, an Ethernet interface (microsecond resolution unless
/// `tsresol` gives the if_tsresol byte) and one enhanced packet block stamped `timestamp` units.
public func handMadePcapng(timestamp: UInt64, tsresol: UInt8? = nil) -> [UInt8] {
    var bytes = le32(0x0A0D_0D0A) + le32(28) + le32(0x1A2B_3C4D) + le16(1) + le16(0) + [UInt8](repeating: 0xFF, count: 8) + le32(28)
    // if_tsresol (option 9, one byte padded to four), then the end of the options.
    let options = tsresol.map { le16(9) + le16(1) + [$0, 0, 0, 0] + le16(0) + le16(0) } ?? []
    let interfaceLength = UInt32(20 + options.count)
    bytes += le32(1) + le32(interfaceLength) + le16(1) + le16(0) + le32(65535) + options + le32(interfaceLength)
    let length = UInt32(32 + handMadeFrame.count)
    bytes += le32(6) + le32(length) + le32(0) + le32(UInt32(truncatingIfNeeded: timestamp >> 32)) + le32(UInt32(truncatingIfNeeded: timestamp))
    bytes += le32(UInt32(handMadeFrame.count)) + le32(UInt32(handMadeFrame.count)) + handMadeFrame + le32(length)
    return bytes
}
