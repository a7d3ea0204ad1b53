import CWirecapPcap
import WirecapEngine

/// Which packets a live handle captures by direction, as libpcap's pcap_direction_t.
public enum PcapDirection: Sendable, Equatable, CaseIterable {
    /// Packets the interface received (PCAP_D_IN): everything but PACKET_OUTGOING.
    case `in`
    /// Packets the host sent on the interface (PCAP_D_OUT): PACKET_OUTGOING only.
    case out
    /// Both (PCAP_D_INOUT), the default.
    case `inout`

    var libpcapValue: pcap_direction_t {
        switch self {
        case .in: PCAP_D_IN
        case .out: PCAP_D_OUT
        case .inout: PCAP_D_INOUT
        }
    }

    /// The program the kernel runs on every member: the direction test, then `filter` (nil:
    /// accept everything, cut to `snapLength`). nil when there is nothing to test at all, which
    /// the engine installs as `ret #snaplen`.
    ///
    /// libpcap tests the direction in user space, after the kernel has copied the packet into
    /// the ring; here the kernel drops the other direction before the copy. The test reads the
    /// packet type through the BPF extension SKF_AD_PKTTYPE and drops with `ret #0`, placed
    /// before the filter, so the filter's own jumps (relative, forward) are untouched and the
    /// filter may be longer than an 8-bit jump could skip.
    public func kernelProgram(filter: [BPFInstruction]?, snapLength: Int) -> [BPFInstruction]? {
        if self == .inout { return filter }
        let body = filter ?? [BPFInstruction(code: Self.retK, jt: 0, jf: 0, k: UInt32(snapLength))]
        // Outgoing: jump to `ret #0` (jt 0) for .in, skip it (jt 1) for .out.
        let (jt, jf): (UInt8, UInt8) = self == .in ? (0, 1) : (1, 0)
        return [
            BPFInstruction(code: Self.loadPacketType, jt: 0, jf: 0, k: Self.packetTypeOffset),
            BPFInstruction(code: Self.jumpIfEqual, jt: jt, jf: jf, k: Self.packetOutgoing),
            BPFInstruction(code: Self.retK, jt: 0, jf: 0, k: 0),
        ] + body
    }

    /// BPF_LD | BPF_W | BPF_ABS.
    static let loadPacketType: UInt16 = 0x20
    /// BPF_JMP | BPF_JEQ | BPF_K.
    static let jumpIfEqual: UInt16 = 0x15
    /// BPF_RET | BPF_K.
    static let retK: UInt16 = 0x06
    /// SKF_AD_OFF + SKF_AD_PKTTYPE: the kernel's pseudo-offset for skb->pkt_type.
    static let packetTypeOffset = UInt32(bitPattern: -0x1000 + 4)
    /// PACKET_OUTGOING.
    static let packetOutgoing: UInt32 = 4
}
