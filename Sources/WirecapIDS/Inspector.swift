#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine

/// Counts packets and flows (IPv4 and IPv6 5-tuples, VLAN tags skipped) and signature matches.
/// New flows allocate (a set insertion); packets of known flows do not. Used by `wirecap-ids` and
/// as the experiment lab's realistic per-packet load.
public struct Inspector: PacketHandler, Sendable {
    public let signatures: [Signature]
    public private(set) var packets = 0
    /// Packets that held each signature, in `signatures` order.
    public private(set) var matches: [Int]
    private var flows = Set<FlowKey>()

    /// Addresses packed into integers, so that building a key allocates nothing.
    struct FlowKey: Hashable, Sendable {
        var a: UInt64
        var b: UInt64
        var c: UInt64
        var d: UInt64
        var protocolNumber: UInt8
        var ports: UInt32
    }

    /// Eight bytes from `offset`, big-endian (fewer at the end are zero).
    static func word(_ p: UnsafeRawBufferPointer, _ offset: Int, _ count: Int = 8) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<count { value = value << 8 | UInt64(p[offset + i]) }
        return value
    }

    public init(signatures: [Signature]) {
        self.signatures = signatures
        matches = Array(repeating: 0, count: signatures.count)
    }

    public mutating func handle(_ packet: Packet) {
        packets += 1
        let bytes = packet.bytes
        if let key = Self.flowKey(bytes) { flows.insert(key) }
        for (index, signature) in signatures.enumerated() where signature.occurs(in: bytes) {
            matches[index] += 1
        }
    }

    static func flowKey(_ b: UnsafeRawBufferPointer) -> FlowKey? {
        var offset = 12
        guard b.count >= 14 else { return nil }
        var type = UInt16(b[offset]) << 8 | UInt16(b[offset + 1])
        while (type == 0x8100 || type == 0x88a8) && b.count >= offset + 6 {
            offset += 4
            type = UInt16(b[offset]) << 8 | UInt16(b[offset + 1])
        }
        let ip = offset + 2
        switch type {
        case 0x0800 where b.count >= ip + 20:
            let headerLength = Int(b[ip] & 0x0f) * 4
            let proto = b[ip + 9]
            let l4 = ip + headerLength
            let ports = b.count >= l4 + 4 ? UInt32(b[l4]) << 24 | UInt32(b[l4 + 1]) << 16 | UInt32(b[l4 + 2]) << 8 | UInt32(b[l4 + 3]) : 0
            return FlowKey(a: word(b, ip + 12), b: 0, c: 0, d: 0, protocolNumber: proto, ports: ports)
        case 0x86dd where b.count >= ip + 40:
            let proto = b[ip + 6]
            let l4 = ip + 40
            let ports = b.count >= l4 + 4 ? UInt32(b[l4]) << 24 | UInt32(b[l4 + 1]) << 16 | UInt32(b[l4 + 2]) << 8 | UInt32(b[l4 + 3]) : 0
            return FlowKey(a: word(b, ip + 8), b: word(b, ip + 16), c: word(b, ip + 24), d: word(b, ip + 32), protocolNumber: proto, ports: ports)
        default:
            return nil
        }
    }

    /// Distinct flows seen.
    public var flowCount: Int { flows.count }

    /// Adds what `other` saw (another queue's inspector, with the same signatures): packets and
    /// matches are summed, flows united, so a flow seen by both counts once. An IDS with a
    /// reader per queue keeps an inspector per reader, sharded by queue as the fanout hash
    /// shards the flows, and merges them at the end: nothing is shared while packets flow.
    public mutating func merge(_ other: Inspector) {
        precondition(other.signatures.map(\.bytes) == signatures.map(\.bytes), "merge inspectors with the same signatures")
        packets += other.packets
        for index in matches.indices { matches[index] += other.matches[index] }
        flows.formUnion(other.flows)
    }

    public func report() -> String {
        var lines = ["packets \(packets)", "flows \(flows.count)"]
        for (index, signature) in signatures.enumerated() { lines.append("signature \(signature.name): \(matches[index]) packets") }
        return lines.joined(separator: "\n")
    }
}
