import WirecapSandbox

/// The frames of a synthetic trace: Ethernet, IPv4 or IPv6, UDP, and the payload header that
/// `SequencedFrame` uses (magic "WCAP", 8-byte sequence number, 4-byte flow number, big endian),
/// then a pattern that follows from the sequence number. `SequencedFrame.sequence(of:)` reads the
/// sequence number back from either family.
///
/// Addresses come only from the benchmarking ranges (RFC 2544 and RFC 5180), so a trace replayed
/// by mistake onto a real network cannot reach anyone:
/// - IPv4, 198.18.0.0/15: flow f goes from 198.18.a.b to 198.19.a.b, a.b = f mod 65536;
/// - IPv6, 2001:2::/48: from 2001:2:0:1::x:y to 2001:2:0:2::x:y, x:y = f as 32 bits.
/// The UDP source port is 1024 + f / 65536 and the destination port 5000, so every flow up to
/// `FlowPlan.maximumFlows` has its own 5-tuple and a kernel flow hash spreads them.
public enum TraceFrame {
    /// Ethernet, IPv4, UDP and the payload header.
    public static let minimumIPv4Size = SequencedFrame.minimumSize
    /// Ethernet, IPv6, UDP and the payload header: a 60 or 64-byte IPv6 frame cannot carry it.
    public static let minimumIPv6Size = SequencedFrame.minimumIPv6Size
    public static let destinationPort = 5000
    public static let ipv4PayloadOffset = 14 + 20 + 8
    public static let ipv6PayloadOffset = 14 + 40 + 8

    public static func sourcePort(flow: Int) -> Int { 1024 + flow >> 16 }

    /// Writes the frame of packet `sequence` (flow `flow`, `size` bytes) at `frame`. `size` must
    /// hold the family's headers; nothing is allocated.
    @inline(__always)
    public static func write(flow: Int, ipv6: Bool, sequence: UInt64, size: Int, into frame: UnsafeMutablePointer<UInt8>) {
        // Ethernet: locally administered unicast addresses, as SequencedFrame.
        frame[0] = 0x02; frame[1] = 0; frame[2] = 0; frame[3] = 0; frame[4] = 0; frame[5] = 0x02
        frame[6] = 0x02; frame[7] = 0; frame[8] = 0; frame[9] = 0; frame[10] = 0; frame[11] = 0x01
        store(ipv6 ? 0x86DD : 0x0800, bytes: 2, at: frame + 12)
        let udp: UnsafeMutablePointer<UInt8>
        let udpLength = size - 14 - (ipv6 ? 40 : 20)
        // The pseudo-header's share of the UDP checksum: addresses, protocol and UDP length.
        var pseudo: UInt32 = 17 + UInt32(udpLength)
        if ipv6 {
            let ip = frame + 14
            // Version 6, traffic class 0, the flow number as flow label (20 bits).
            store(0x6000_0000 | UInt64(flow & 0xF_FFFF), bytes: 4, at: ip)
            store(UInt64(udpLength), bytes: 2, at: ip + 4)
            ip[6] = 17  // UDP
            ip[7] = 64  // hop limit
            // Source 2001:2:0:1::(flow as 32 bits), destination 2001:2:0:2::(the same).
            let interfaceID = UInt64(truncatingIfNeeded: UInt32(truncatingIfNeeded: flow))
            store(0x2001_0002_0000_0001, bytes: 8, at: ip + 8)
            store(interfaceID, bytes: 8, at: ip + 16)
            store(0x2001_0002_0000_0002, bytes: 8, at: ip + 24)
            store(interfaceID, bytes: 8, at: ip + 32)
            for pair in stride(from: 8, to: 40, by: 2) { pseudo += UInt32(ip[pair]) << 8 | UInt32(ip[pair + 1]) }
            udp = ip + 40
        } else {
            let ip = frame + 14
            ip[0] = 0x45; ip[1] = 0
            store(UInt64(size - 14), bytes: 2, at: ip + 2)
            store(sequence & 0xffff, bytes: 2, at: ip + 4)  // identification, as SequencedFrame
            ip[6] = 0x40; ip[7] = 0  // don't fragment
            ip[8] = 64; ip[9] = 17; ip[10] = 0; ip[11] = 0
            ip[12] = 198; ip[13] = 18; ip[14] = UInt8(truncatingIfNeeded: flow >> 8); ip[15] = UInt8(truncatingIfNeeded: flow)
            ip[16] = 198; ip[17] = 19; ip[18] = ip[14]; ip[19] = ip[15]
            let checksum = SequencedFrame.internetChecksum(UnsafeRawBufferPointer(start: ip, count: 20))
            store(UInt64(checksum), bytes: 2, at: ip + 10)
            for pair in stride(from: 12, to: 20, by: 2) { pseudo += UInt32(ip[pair]) << 8 | UInt32(ip[pair + 1]) }
            udp = ip + 20
        }
        store(UInt64(sourcePort(flow: flow)), bytes: 2, at: udp)
        store(UInt64(destinationPort), bytes: 2, at: udp + 2)
        store(UInt64(udpLength), bytes: 2, at: udp + 4)
        udp[6] = 0; udp[7] = 0
        let payload = udp + 8
        store(UInt64(SequencedFrame.magic), bytes: 4, at: payload)
        store(sequence, bytes: 8, at: payload + 4)
        store(UInt64(truncatingIfNeeded: UInt32(truncatingIfNeeded: flow)), bytes: 4, at: payload + 12)
        // The same pattern as SequencedFrame: every byte follows from the sequence number.
        let payloadLength = udpLength - 8
        var i = 16
        while i < payloadLength {
            payload[i] = UInt8(truncatingIfNeeded: sequence &+ UInt64(i))
            i += 1
        }
        // UDP checksum over pseudo-header, header and payload. 0 would mean "none", which IPv6
        // forbids (RFC 8200 section 8.1), so a computed 0 is sent as 0xffff (RFC 768).
        let sum = SequencedFrame.internetChecksum(UnsafeRawBufferPointer(start: udp, count: udpLength), initial: pseudo)
        store(UInt64(sum == 0 ? 0xffff : sum), bytes: 2, at: udp + 6)
    }

    @inline(__always)
    static func store(_ value: UInt64, bytes: Int, at p: UnsafeMutablePointer<UInt8>) {
        for i in 0..<bytes { p[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(bytes - 1 - i))) }
    }
}
