import CWirecapPcapABI
import WirecapEngine

/// pcap_loop's and pcap_dispatch's callback as a packet handler: the facade walks its chunks
/// with this value, specialised, and each packet reaches the program's C function with a
/// `pcap_pkthdr` on the stack: no allocation, no copy, nothing retained per packet.
struct CallbackHandler: PacketHandler {
    let callback: pcap_handler
    let user: UnsafeMutablePointer<u_char>?
    /// pcap_set_tstamp_precision(NANO): `tv_usec` carries nanoseconds, as libpcap does.
    let nanoseconds: Bool

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        var header = pcap_pkthdr(
            ts: timeval(tv_sec: Int(packet.seconds), tv_usec: Int(nanoseconds ? packet.nanoseconds : packet.nanoseconds / 1000)),
            caplen: UInt32(truncatingIfNeeded: packet.bytes.count), len: UInt32(truncatingIfNeeded: packet.wireLength))
        callback(user, &header, packet.bytes.baseAddress?.assumingMemoryBound(to: u_char.self))
    }

    mutating func blockDone(queue: Int) {}
}
