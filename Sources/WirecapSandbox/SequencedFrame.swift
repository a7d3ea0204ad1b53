/// Test frames that carry their own sequence number: Ethernet, IPv4 from 198.18.0.0/15 (the
/// benchmarking range), UDP, and a payload that starts with a magic word, the sequence number
/// and the flow number. A capture can then be checked for loss, duplication and corruption,
/// since every frame's bytes follow from its sequence number alone.
public struct SequencedFrame: Sendable {
    public static let magic: UInt32 = 0x5743_4150  // "WCAP"
    public static let minimumSize = 14 + 20 + 8 + 16
    /// Where the magic word starts: after the Ethernet, IPv4 and UDP headers.
    static let payloadOffset = 14 + 20 + 8

    public let flows: Int
    public let size: Int
    /// Share of frames, in percent, that go to flow 0 (an elephant); the rest are spread round
    /// robin over the other flows. 0: every flow gets the same share.
    public let elephantPercent: Int

    public init(flows: Int, size: Int, elephantPercent: Int = 0) {
        precondition(flows >= 1 && flows <= 1 << 16, "flows must be 1...65536")
        precondition(size >= Self.minimumSize && size <= 9000, "frame size must be \(Self.minimumSize)...9000")
        precondition((0...100).contains(elephantPercent) && (elephantPercent == 0 || flows >= 2), "an elephant needs 2 flows or more")
        self.flows = flows
        self.size = size
        self.elephantPercent = elephantPercent
    }

    /// The flow frame `sequence` belongs to: round robin, so every flow gets its share; with an
    /// elephant, `elephantPercent` of every 100 consecutive frames go to flow 0.
    public func flow(of sequence: UInt64) -> Int {
        guard elephantPercent > 0 else { return Int(sequence % UInt64(flows)) }
        if Int(sequence % 100) < elephantPercent { return 0 }
        return 1 + Int(sequence % UInt64(flows - 1))
    }

    /// Writes frame `sequence` into `buffer` (at least `size` bytes).
    public func write(sequence: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        let flow = flow(of: sequence)
        let b = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // Ethernet: locally administered unicast addresses, IPv4.
        let header: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]
        for i in 0..<14 { b[i] = header[i] }
        // IPv4: 198.18.f.f -> 198.19.0.1, UDP, checksum filled below.
        let ip = b + 14
        let totalLength = size - 14
        let fields: [UInt8] = [
            0x45, 0, UInt8(totalLength >> 8), UInt8(totalLength & 0xff), UInt8(truncatingIfNeeded: sequence >> 8),
            UInt8(truncatingIfNeeded: sequence), 0x40, 0, 64, 17, 0, 0,
            198, 18, UInt8(flow >> 8), UInt8(flow & 0xff), 198, 19, 0, 1,
        ]
        for i in 0..<20 { ip[i] = fields[i] }
        let checksum = Self.internetChecksum(UnsafeRawBufferPointer(start: ip, count: 20))
        ip[10] = UInt8(checksum >> 8)
        ip[11] = UInt8(checksum & 0xff)
        // UDP: source port varies with the flow so the kernel's flow hash spreads the flows.
        let udp = b + 34
        let sourcePort = 1024 + flow
        let udpLength = size - 34
        let udpFields: [UInt8] = [
            UInt8(truncatingIfNeeded: sourcePort >> 8), UInt8(truncatingIfNeeded: sourcePort), 0x13, 0x88,
            UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0,
        ]
        for i in 0..<8 { udp[i] = udpFields[i] }
        // Payload: magic, sequence, flow, then a pattern that depends on the sequence number.
        let payload = b + Self.payloadOffset
        Self.storeBigEndian(UInt64(Self.magic), bytes: 4, at: payload)
        Self.storeBigEndian(sequence, bytes: 8, at: payload + 4)
        Self.storeBigEndian(UInt64(flow), bytes: 4, at: payload + 12)
        for i in 16..<(size - Self.payloadOffset) { payload[i] = UInt8(truncatingIfNeeded: sequence &+ UInt64(i)) }
        // UDP checksum over the pseudo-header, header and payload (0 means none; 0xffff then).
        var sum: UInt32 = 0
        for pair in stride(from: 12, to: 20, by: 2) { sum += UInt32(ip[pair]) << 8 | UInt32(ip[pair + 1]) }
        sum += 17 + UInt32(udpLength)
        let udpSum = Self.internetChecksum(UnsafeRawBufferPointer(start: udp, count: udpLength), initial: sum)
        let value = udpSum == 0 ? 0xffff : udpSum
        udp[6] = UInt8(value >> 8)
        udp[7] = UInt8(value & 0xff)
    }

    public func bytes(sequence: UInt64) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: size)
        frame.withUnsafeMutableBytes { write(sequence: sequence, into: $0) }
        return frame
    }

    /// Where a send time stamp goes (`stamp(sendTime:into:)`): the first 6 bytes after the flow
    /// number, which otherwise hold the sequence-derived pattern. 6 bytes so that a 64-byte
    /// frame, the size the forwarding measurements use, has room for it.
    static let stampOffset = payloadOffset + 16
    /// The smallest frame that can carry a send time stamp.
    public static let minimumStampedSize = stampOffset + 6
    /// The stamp keeps the low 48 bits of the time in nanoseconds (78 hours before it wraps), so
    /// a latency is a difference modulo 2^48.
    public static let stampMask: UInt64 = (1 << 48) - 1

    /// Overwrites the stamp bytes of an IPv4 frame made by `write` with the low 48 bits of
    /// `sendTime` (nanoseconds) and updates the UDP checksum to match (RFC 1624), so the frame
    /// stays valid UDP. Frames that are never stamped keep their bytes: what `write` makes is
    /// unchanged, and so is every check that compares against it.
    public static func stamp(sendTime: UInt64, into frame: UnsafeMutableRawBufferPointer) {
        precondition(frame.count >= minimumStampedSize, "a stamped frame needs \(minimumStampedSize) bytes or more")
        let b = frame.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // The stamp starts at an even offset from the UDP header (24 bytes in), so it covers
        // three whole 16-bit words of the checksum.
        var sum = UInt32(~(UInt16(b[40]) << 8 | UInt16(b[41])))
        for word in 0..<3 {
            let at = stampOffset + 2 * word
            sum += UInt32(~(UInt16(b[at]) << 8 | UInt16(b[at + 1])))
        }
        storeBigEndian(sendTime & stampMask, bytes: 6, at: b + stampOffset)
        for word in 0..<3 {
            let at = stampOffset + 2 * word
            sum += UInt32(b[at]) << 8 | UInt32(b[at + 1])
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        let value = ~UInt16(sum)
        let checksum = value == 0 ? 0xffff : value
        b[40] = UInt8(checksum >> 8)
        b[41] = UInt8(checksum & 0xff)
    }

    /// The 48-bit send time stamp of an IPv4 frame that `stamp(sendTime:into:)` stamped.
    public static func sendTime(of frame: UnsafeRawBufferPointer) -> UInt64? {
        guard frame.count >= minimumStampedSize else { return nil }
        var value: UInt64 = 0
        for i in 0..<6 { value = value << 8 | UInt64(frame[stampOffset + i]) }
        return value
    }

    /// Where the magic word starts in an IPv6/UDP frame (`wirecap synth` writes them): after the
    /// Ethernet, IPv6 and UDP headers.
    static let ipv6PayloadOffset = 14 + 40 + 8
    /// The smallest IPv6 frame with the payload header.
    public static let minimumIPv6Size = ipv6PayloadOffset + 16

    /// The sequence number of a frame made by this type or by `wirecap synth` (IPv4 or IPv6, UDP,
    /// payload starting with the magic word), or nil for any other frame.
    public static func sequence(of frame: UnsafeRawBufferPointer) -> UInt64? {
        // IPv6 (EtherType 0x86DD, next header UDP): the payload header sits 20 bytes further in.
        // Anything else is read exactly as before, at the IPv4 offset.
        if frame.count >= minimumIPv6Size && frame[12] == 0x86 && frame[13] == 0xDD && frame[20] == 17,
            let sequence = payloadSequence(of: frame, at: ipv6PayloadOffset)
        {
            return sequence
        }
        guard frame.count >= minimumSize else { return nil }
        return payloadSequence(of: frame, at: payloadOffset)
    }

    /// The sequence number after the magic word at `offset`, or nil without the magic word.
    private static func payloadSequence(of frame: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        var magic: UInt32 = 0
        for i in 0..<4 { magic = magic << 8 | UInt32(frame[offset + i]) }
        guard magic == Self.magic else { return nil }
        var sequence: UInt64 = 0
        for i in 4..<12 { sequence = sequence << 8 | UInt64(frame[offset + i]) }
        return sequence
    }

    static func storeBigEndian(_ value: UInt64, bytes: Int, at p: UnsafeMutablePointer<UInt8>) {
        for i in 0..<bytes { p[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(bytes - 1 - i))) }
    }

    public static func internetChecksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt16 {
        var sum = initial
        var i = 0
        while i + 1 < data.count {
            sum += UInt32(data[i]) << 8 | UInt32(data[i + 1])
            i += 2
        }
        if i < data.count { sum += UInt32(data[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
