import CWirecapLinux

/// A frame to place in a synthetic block.
@_spi(Harness)
public struct SyntheticFrame: Sendable {
    public var bytes: [UInt8]
    public var wireLength: Int
    public var seconds: UInt32
    public var nanoseconds: UInt32
    /// Strip the 802.1Q/802.1ad tag at bytes 12..<16 into the header, as the kernel does on receive.
    public var stripVLAN: Bool

    public init(bytes: [UInt8], wireLength: Int? = nil, seconds: UInt32 = 0, nanoseconds: UInt32 = 0, stripVLAN: Bool = false) {
        self.bytes = bytes
        self.wireLength = wireLength ?? bytes.count
        self.seconds = seconds
        self.nanoseconds = nanoseconds
        self.stripVLAN = stripVLAN
    }
}

/// A retired TPACKET_V3 block built in ordinary memory with the kernel's layout, for tests and
/// benchmarks of the block walk without a socket. Walking a block with VLAN-stripped frames puts
/// the tags back in place, so such a block is walked once; build another to walk again.
@_spi(Harness)
public struct SyntheticBlock: ~Copyable {
    public let pointer: UnsafeMutableRawPointer
    public let size: Int
    public let packetCount: Int

    /// The frames do not fit in one block of the requested size.
    public struct Overflow: Error {}

    /// Lays the frames out as the kernel would, with `CaptureConfiguration.vlanReserve` bytes of
    /// headroom; throws when they do not fit in `size` bytes.
    public init(size: Int, frames: [SyntheticFrame]) throws(Overflow) {
        let align = Int(CWirecapLinux_TPACKET_ALIGNMENT)
        func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        // Where the kernel puts the MAC header: after the aligned header, 16 bytes for the
        // link-layer address, and the reserve, counted back from the network header.
        let macOffset = aligned(Int(CWirecapLinux_TPACKET3_HDRLEN) + 16) + CaptureConfiguration.vlanReserve - 14
        var offset = aligned(Int(CWirecapLinux_BLOCK_DESC_SIZE))
        memory.storeBytes(of: UInt32(offset), toByteOffset: Int(CWirecapLinux_BLOCK_FIRST_PKT), as: UInt32.self)
        var previous: Int? = nil
        for frame in frames {
            var bytes = frame.bytes
            var status = UInt32(TP_STATUS_USER)
            var tci: UInt16 = 0
            var tpid: UInt16 = 0
            var wire = frame.wireLength
            if frame.stripVLAN && bytes.count >= 16 {
                tpid = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
                tci = UInt16(bytes[14]) << 8 | UInt16(bytes[15])
                bytes.removeSubrange(12..<16)
                wire -= 4
                status |= UInt32(TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID)
            }
            let end = offset + macOffset + bytes.count
            guard end <= size else {
                memory.deallocate()
                throw Overflow()
            }
            if let previous {
                memory.storeBytes(of: UInt32(offset - previous), toByteOffset: previous + Int(CWirecapLinux_PKT_NEXT), as: UInt32.self)
            }
            let header = memory + offset
            header.storeBytes(of: frame.seconds, toByteOffset: Int(CWirecapLinux_PKT_SEC), as: UInt32.self)
            header.storeBytes(of: frame.nanoseconds, toByteOffset: Int(CWirecapLinux_PKT_NSEC), as: UInt32.self)
            header.storeBytes(of: UInt32(bytes.count), toByteOffset: Int(CWirecapLinux_PKT_SNAPLEN), as: UInt32.self)
            header.storeBytes(of: UInt32(wire), toByteOffset: Int(CWirecapLinux_PKT_LEN), as: UInt32.self)
            header.storeBytes(of: status, toByteOffset: Int(CWirecapLinux_PKT_STATUS), as: UInt32.self)
            header.storeBytes(of: UInt16(macOffset), toByteOffset: Int(CWirecapLinux_PKT_MAC), as: UInt16.self)
            header.storeBytes(of: tci, toByteOffset: Int(CWirecapLinux_PKT_VLAN_TCI), as: UInt16.self)
            header.storeBytes(of: tpid, toByteOffset: Int(CWirecapLinux_PKT_VLAN_TPID), as: UInt16.self)
            bytes.withUnsafeBytes { (header + macOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            previous = offset
            offset = aligned(end)
        }
        memory.storeBytes(of: UInt32(frames.count), toByteOffset: Int(CWirecapLinux_BLOCK_NUM_PKTS), as: UInt32.self)
        memory.storeBytes(of: UInt32(offset), toByteOffset: Int(CWirecapLinux_BLOCK_LEN), as: UInt32.self)
        memory.storeBytes(of: UInt32(TP_STATUS_USER), toByteOffset: Int(CWirecapLinux_BLOCK_STATUS), as: UInt32.self)
        self.pointer = memory
        self.size = size
        self.packetCount = frames.count
    }

    deinit { pointer.deallocate() }
}

/// Blocks full of one frame, as many as fit, plus one block with the remainder, holding exactly
/// `packets` packets between them: what a benchmark walks, copies or hands over per iteration.
/// Frames are IPv4-typed Ethernet frames of one length with counting bytes, never VLAN-stripped,
/// so the blocks can be walked again and again.
@_spi(Harness)
public final class SyntheticBlockRun: @unchecked Sendable {
    // @unchecked: immutable after init; the blocks' memory is only read.
    public let full: SyntheticBlock
    public let remainder: SyntheticBlock?
    /// How many times `full` is used per run.
    public let fullBlocks: Int
    public let fullPointer: UnsafeMutableRawPointer
    public let remainderPointer: UnsafeMutableRawPointer?
    public let packets: Int
    public let blockSize: Int

    public init(frameLength: Int, blockSize: Int, packets: Int) {
        var bytes = [UInt8](repeating: 0, count: frameLength)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index) }
        bytes.replaceSubrange(0..<14, with: [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  // destination
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  // source
            0x08, 0x00,  // IPv4
        ])
        let frame = SyntheticFrame(bytes: bytes, seconds: 1_700_000_000, nanoseconds: 1)
        // As many frames as fit: a binary search, since each try lays out a whole block.
        var fits = 1
        var tooMany = blockSize / frameLength + 1
        while tooMany - fits > 1 {
            let middle = (fits + tooMany) / 2
            do {
                _ = try SyntheticBlock(size: blockSize, frames: Array(repeating: frame, count: middle))
                fits = middle
            } catch {
                tooMany = middle
            }
        }
        let frames = Array(repeating: frame, count: fits)
        let block = try! SyntheticBlock(size: blockSize, frames: frames)
        precondition(block.packetCount <= packets, "a run must hold at least one full block")
        fullBlocks = packets / block.packetCount
        let rest = packets % block.packetCount
        fullPointer = block.pointer
        full = block
        if rest == 0 {
            remainderPointer = nil
            remainder = nil
        } else {
            let block = try! SyntheticBlock(size: blockSize, frames: Array(frames.prefix(rest)))
            remainderPointer = block.pointer
            remainder = consume block
        }
        self.packets = packets
        self.blockSize = blockSize
    }

    public var packetsPerBlock: Int { full.packetCount }
    public var remainderPackets: Int { packets % packetsPerBlock }

    /// Walks every packet of the run into `handler`, as a capture thread walks ring blocks;
    /// returns how many (`packets`).
    @inlinable @inline(__always)
    public func walk<H: PacketHandler>(into handler: inout H) -> Int {
        var walked = 0
        for _ in 0..<fullBlocks {
            walked &+= BlockWalk.walk(block: fullPointer, queue: 0, snapLength: 65_535, reinsertVLAN: true, handler: &handler)
        }
        if let remainderPointer {
            walked &+= BlockWalk.walk(block: remainderPointer, queue: 0, snapLength: 65_535, reinsertVLAN: true, handler: &handler)
        }
        return walked
    }

    /// One line for a benchmark's setup output.
    public var summary: String {
        "\(packetsPerBlock) frames per \(blockSize >> 10) KiB block, \(fullBlocks) full blocks + \(remainderPackets) = \(packets) packets per iteration"
    }
}
