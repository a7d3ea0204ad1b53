import CWirecapLinux

/// Walks the packets of one retired TPACKET_V3 block and hands each to a handler.
///
/// This is the hot path: plain loads at fixed offsets, no allocation, no reference counting, and
/// a handler called through a specialised generic, never an existential.
public enum BlockWalk {
    public static let statusUser = UInt32(TP_STATUS_USER)
    public static let statusLosing = UInt32(TP_STATUS_LOSING)
    @usableFromInline static let statusVLANValid = UInt32(TP_STATUS_VLAN_VALID)
    @usableFromInline static let statusVLANTPIDValid = UInt32(TP_STATUS_VLAN_TPID_VALID)
    @usableFromInline static let offsetNumPackets = Int(CWirecapLinux_BLOCK_NUM_PKTS)
    @usableFromInline static let offsetFirstPacket = Int(CWirecapLinux_BLOCK_FIRST_PKT)
    @usableFromInline static let offsetBlockLength = Int(CWirecapLinux_BLOCK_LEN)
    @usableFromInline static let offsetNext = Int(CWirecapLinux_PKT_NEXT)
    @usableFromInline package static let offsetSeconds = Int(CWirecapLinux_PKT_SEC)
    @usableFromInline package static let offsetNanoseconds = Int(CWirecapLinux_PKT_NSEC)
    @usableFromInline static let offsetSnapLength = Int(CWirecapLinux_PKT_SNAPLEN)
    @usableFromInline static let offsetLength = Int(CWirecapLinux_PKT_LEN)
    @usableFromInline static let offsetStatus = Int(CWirecapLinux_PKT_STATUS)
    @usableFromInline static let offsetMac = Int(CWirecapLinux_PKT_MAC)
    @usableFromInline static let offsetVLANTCI = Int(CWirecapLinux_PKT_VLAN_TCI)
    @usableFromInline static let offsetVLANTPID = Int(CWirecapLinux_PKT_VLAN_TPID)

    /// Delivers packets `first..<first+limit` of `block` (fewer at its end) to `handler`, without
    /// `blockDone`, and returns how many it consumed: for readers that stop inside a block, as
    /// pcap_dispatch does with a count. Each packet must be delivered once (VLAN reinsertion
    /// rewrites the headroom). A packet whose offsets leave the block ends the walk (see the
    /// whole-block walk); the count consumed stays what the block claims, so a reader moves on.
    @inlinable
    public static func walk<H: PacketHandler>(
        block: UnsafeMutableRawPointer, queue: Int, snapLength: Int, first: Int, limit: Int, handler: inout H
    ) -> Int {
        walk(block: block, queue: queue, snapLength: snapLength, first: first, limit: limit, handler: &handler) { false }
    }

    /// The ranged walk that can also stop early: after each packet it hands over, `stop()` is
    /// asked, and a true answer ends the walk there. Returns how many packets it consumed: up to
    /// and including the one after which it stopped, or, as the ranged walk, the whole range.
    /// For readers that must take a break request after the packet in hand (pcap_breakloop)
    /// rather than at the end of a block; `stop` is typically one relaxed atomic load.
    @inlinable
    public static func walk<H: PacketHandler>(
        block: UnsafeMutableRawPointer, queue: Int, snapLength: Int, first: Int, limit: Int, handler: inout H,
        stoppingWhen stop: () -> Bool
    ) -> Int {
        let count = Int(block.load(fromByteOffset: offsetNumPackets, as: UInt32.self))
        guard first < count, limit > 0 else { return 0 }
        let end = Int(block.load(fromByteOffset: offsetBlockLength, as: UInt32.self))
        var offset = Int(block.load(fromByteOffset: offsetFirstPacket, as: UInt32.self))
        let consumed = min(limit, count - first)
        for index in 0..<(first + consumed) {
            guard let next = nextOffset(block: block, offset: offset, end: end) else { break }
            if index >= first {
                let packet = block + offset
                deliver(packet: packet, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
                // As the whole-block walk: ask for the header about 8 packets ahead.
                let step = next &- offset
                CWirecapLinux_prefetch(packet + 8 &* step)
                CWirecapLinux_prefetch(packet + (8 &* step &+ 64))
                if stop() { return index - first + 1 }
            }
            offset = next
        }
        return consumed
    }

    /// A packet offset as one number that is at most `(blk_len - TPACKET3_HDRLEN) / 8` exactly
    /// when the offset is 8-byte aligned and its header fits: rotated right by 3 bits, an
    /// aligned offset becomes offset / 8 and a misaligned one gets its low bits at the top, so
    /// it exceeds any limit. Two checks for the price of one compare.
    @inlinable @inline(__always)
    static func headerSlot(_ offset: Int) -> UInt {
        let bits = UInt(bitPattern: offset)
        return bits &>> 3 | bits &<< (UInt.bitWidth - 3)
    }

    /// Writes the VLAN tag the kernel stripped into the header back into the frame at `frame`,
    /// with its real TPID, in the 4 bytes of headroom in front of it (as libpcap does), when
    /// the frame has its two MAC addresses (`captured` at least 12). Returns whether it did;
    /// the frame then starts 4 bytes earlier and is 4 bytes longer. Out of line: tagged frames
    /// are rare on most links, and inlined, its checks were merged into every packet's path.
    @usableFromInline @inline(never)
    static func reinsertTag(packet: UnsafeMutableRawPointer, status: UInt32, frame: UnsafeMutableRawPointer, captured: Int) -> Bool {
        guard captured >= 12 else { return false }
        let tci = packet.load(fromByteOffset: offsetVLANTCI, as: UInt16.self)
        let tpid: UInt16 =
            status & statusVLANTPIDValid != 0
            ? packet.load(fromByteOffset: offsetVLANTPID, as: UInt16.self) : 0x8100
        let tagged = frame - 4
        tagged.copyMemory(from: frame, byteCount: 12)
        tagged.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
        tagged.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
        return true
    }

    /// The smallest `tp_mac` a packet may have: the kernel puts the frame after the header and a
    /// link-layer address (`TPACKET3_HDRLEN`), so VLAN reinsertion, which writes 4 bytes before
    /// the frame, never reaches the 48-byte header.
    @usableFromInline static let minimumMac = Int(CWirecapLinux_TPACKET3_HDRLEN)
    /// The kernel places each V3 packet on an 8-byte boundary (`V3_ALIGNMENT`); a header off it
    /// is corrupt, and loading its 32-bit fields would be a misaligned load.
    @usableFromInline static let alignmentMask = 7

    /// Checks the packet at `offset` against the block's used length `end` (`blk_len`, bounded
    /// by the block's memory by whoever hands the block over: the capture loop for a ring block,
    /// the copy for a chunk) and returns where the next packet starts, or nil when the header,
    /// the frame (`tp_mac` + `tp_snaplen`) or the step to the next one (`tp_next_offset`, at
    /// least this packet's own extent) would leave the block.
    @inlinable @inline(__always)
    static func nextOffset(block: UnsafeMutableRawPointer, offset: Int, end: Int) -> Int? {
        guard offset & alignmentMask == 0, offset &+ minimumMac <= end else { return nil }
        let packet = block + offset
        let mac = Int(packet.load(fromByteOffset: offsetMac, as: UInt16.self))
        let extent = mac &+ Int(packet.load(fromByteOffset: offsetSnapLength, as: UInt32.self))
        guard mac >= minimumMac, offset &+ extent <= end else { return nil }
        return offset &+ max(extent, Int(packet.load(fromByteOffset: offsetNext, as: UInt32.self)))
    }

    /// Delivers every packet of `block` to `handler` and returns how many the block holds
    /// (`num_pkts`: all of them were taken out of the ring, delivered or, past a corrupted
    /// offset, not).
    ///
    /// When the kernel stripped a VLAN tag into the header, the tag is written back into the
    /// frame with its real TPID, in the headroom the ring reserves in front of each frame (as
    /// libpcap does): an IDS sees the bytes that were on the wire. The frame is then cut to
    /// `snapLength`, since the tag adds four bytes to what the kernel already cut.
    ///
    /// `blockDone`: whether to end with `handler.blockDone(queue:)`; a reader that calls it once
    /// per call of its own (pcap's dispatch) passes false, rather than wrapping its handler in one
    /// that swallows the call.
    @inlinable
    public static func walk<H: PacketHandler>(
        block: UnsafeMutableRawPointer, queue: Int, snapLength: Int, reinsertVLAN: Bool, handler: inout H, blockDone: Bool = true
    ) -> Int {
        let count = Int(block.load(fromByteOffset: offsetNumPackets, as: UInt32.self))
        // Every offset the kernel wrote is checked against the block's used length before it is
        // followed, so a corrupted block (or a future kernel change) ends the walk instead of
        // reading outside the block: the header must be aligned and fit, the frame (`tp_mac` +
        // `tp_snaplen`) must lie inside and after the header, and `tp_next_offset` must step
        // past this packet. The checks are arranged for the fewest instructions on the common
        // path (issue 14: they were most of the plain ring's instructions per packet): alignment
        // and "the header fits" are one compare (`headerSlot`), and a VLAN tag costs one test of
        // the status word, the rest of its work out of line.
        let end = Int(block.load(fromByteOffset: offsetBlockLength, as: UInt32.self))
        let lastHeaderSlot = end >= minimumMac ? UInt(end &- minimumMac) &>> 3 : 0
        var offset = Int(block.load(fromByteOffset: offsetFirstPacket, as: UInt32.self))
        var left = end >= minimumMac ? count : 0
        while left > 0 {
            guard headerSlot(offset) <= lastHeaderSlot else { break }
            let packet = block + offset
            var captured = Int(packet.load(fromByteOffset: offsetSnapLength, as: UInt32.self))
            let mac = Int(packet.load(fromByteOffset: offsetMac, as: UInt16.self))
            let extent = mac &+ captured
            guard offset &+ extent <= end, mac >= minimumMac else { break }
            var wire = Int(packet.load(fromByteOffset: offsetLength, as: UInt32.self))
            var frame = packet + mac
            let status = packet.load(fromByteOffset: offsetStatus, as: UInt32.self)
            if reinsertVLAN && status & statusVLANValid != 0 && reinsertTag(packet: packet, status: status, frame: frame, captured: captured) {
                frame -= 4
                captured &+= 4
                wire &+= 4
            }
            handler.handle(
                Packet(
                    bytes: UnsafeRawBufferPointer(start: frame, count: min(captured, snapLength)),
                    wireLength: wire,
                    seconds: packet.load(fromByteOffset: offsetSeconds, as: UInt32.self),
                    nanoseconds: packet.load(fromByteOffset: offsetNanoseconds, as: UInt32.self),
                    queue: queue))
            let next = Int(packet.load(fromByteOffset: offsetNext, as: UInt32.self))
            // Each packet's address comes from the previous header, so misses cannot overlap by
            // themselves: ask for the header about 8 packets ahead (guessing from this packet's
            // size). Benchmarks/, 1 MiB blocks: 5.1 -> 3.5 ns (64 B), 6.6 -> 3.3 ns (1514 B) per packet.
            CWirecapLinux_prefetch(packet + 8 &* next)
            CWirecapLinux_prefetch(packet + (8 &* next &+ 64))
            // A step shorter than the packet (0 included) would walk over it again.
            guard next >= extent else { break }
            offset &+= next
            left &-= 1
        }
        if blockDone { handler.blockDone(queue: queue) }
        return count
    }

    /// Calls `body` with the TPACKET3 header of every packet of `block`, stopping where the
    /// whole-block walk stops (the same bounds checks, in the same order): for a consumer that
    /// walks a chunk twice and keeps per-packet notes in the headers between the two walks (the
    /// forwarder, when it must transmit a chunk in its owner's order after deciding on it).
    @inlinable
    package static func forEachPacketHeader(block: UnsafeMutableRawPointer, _ body: (UnsafeMutableRawPointer) -> Void) {
        let count = Int(block.load(fromByteOffset: offsetNumPackets, as: UInt32.self))
        let end = Int(block.load(fromByteOffset: offsetBlockLength, as: UInt32.self))
        var offset = Int(block.load(fromByteOffset: offsetFirstPacket, as: UInt32.self))
        for _ in 0..<count {
            guard offset & alignmentMask == 0, offset &+ minimumMac <= end else { break }
            let packet = block + offset
            let mac = Int(packet.load(fromByteOffset: offsetMac, as: UInt16.self))
            let extent = mac &+ Int(packet.load(fromByteOffset: offsetSnapLength, as: UInt32.self))
            guard mac >= minimumMac, offset &+ extent <= end else { break }
            body(packet)
            let next = Int(packet.load(fromByteOffset: offsetNext, as: UInt32.self))
            if next < extent { break }
            offset &+= next
        }
    }

    /// Hands one packet (its TPACKET3 header at `packet`) to `handler`, for the ranged walk. The
    /// whole-block walk keeps its own copy of this body: calling this from it measured 1.7 ns
    /// slower per packet (Benchmarks/, 64-byte frames: 5.4 against 3.7 ns). And this one keeps
    /// the VLAN code inline rather than calling `reinsertTag` as the whole-block walk does: the
    /// call made the facade's closure dispatch slower (p50 5.2 and 5.4 against 3.7 and 4.3 ns a
    /// packet, two runs each).
    @inlinable @inline(__always)
    package static func deliver<H: PacketHandler>(
        packet: UnsafeMutableRawPointer, queue: Int, snapLength: Int, reinsertVLAN: Bool, handler: inout H
    ) {
        let status = packet.load(fromByteOffset: offsetStatus, as: UInt32.self)
        var captured = Int(packet.load(fromByteOffset: offsetSnapLength, as: UInt32.self))
        var wire = Int(packet.load(fromByteOffset: offsetLength, as: UInt32.self))
        var frame = packet + Int(packet.load(fromByteOffset: offsetMac, as: UInt16.self))
        if reinsertVLAN && status & statusVLANValid != 0 && captured >= 12 {
            let tci = packet.load(fromByteOffset: offsetVLANTCI, as: UInt16.self)
            let tpid: UInt16 =
                status & statusVLANTPIDValid != 0
                ? packet.load(fromByteOffset: offsetVLANTPID, as: UInt16.self) : 0x8100
            frame -= 4
            frame.copyMemory(from: frame + 4, byteCount: 12)
            frame.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
            frame.storeBytes(of: tci.bigEndian, toByteOffset: 14, as: UInt16.self)
            captured += 4
            wire += 4
        }
        if captured > snapLength { captured = snapLength }
        handler.handle(
            Packet(
                bytes: UnsafeRawBufferPointer(start: frame, count: captured),
                wireLength: wire,
                seconds: packet.load(fromByteOffset: offsetSeconds, as: UInt32.self),
                nanoseconds: packet.load(fromByteOffset: offsetNanoseconds, as: UInt32.self),
                queue: queue))
    }
}
