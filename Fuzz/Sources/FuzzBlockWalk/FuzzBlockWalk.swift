import WirecapEngine

// Fuzzes BlockWalk.walk over arbitrary bytes shaped as a TPACKET_V3 block. The input is copied
// into a page-aligned block of `blockSize` bytes (the rest zeroed); its own bytes at the block
// descriptor's offsets give num_pkts and blk_len, blk_len reduced to at most the block size (the
// capture loop bounds it by the ring's block the same way). The handler touches every byte it is
// given and checks that each packet lies inside the block: a packet outside it (or past blk_len)
// is a finding even when the memory there happens to be mapped. The partial walk (pcap's dispatch
// with a count) runs on a second copy.

let blockSize = 16_384
/// `offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts)` and `.blk_len`.
let offsetNumPackets = 12
let offsetBlockLength = 20

nonisolated(unsafe) let block = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 4096)
nonisolated(unsafe) var sink: UInt64 = 0

struct TouchingHandler: PacketHandler {
    let start: UnsafeRawPointer
    let end: UnsafeRawPointer
    let snapLength: Int
    var total: UInt64 = 0
    var packets = 0
    var blocks = 0

    mutating func handle(_ packet: Packet) {
        packets += 1
        guard packet.bytes.count > 0, let base = packet.bytes.baseAddress else { return }
        precondition(base >= start && base + packet.bytes.count <= end,
                     "packet \(base - start)..<\(base - start + packet.bytes.count) outside 0..<\(end - start)")
        for byte in packet.bytes { total &+= UInt64(byte) }
        total &+= UInt64(packet.wireLength) &+ UInt64(packet.seconds) &+ UInt64(packet.nanoseconds)
    }

    mutating func blockDone(queue: Int) { blocks += 1 }
}

func load(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int {
    let copied = min(size, blockSize)
    block.copyMemory(from: data, byteCount: copied)
    if copied < blockSize { (block + copied).initializeMemory(as: UInt8.self, repeating: 0, count: blockSize - copied) }
    // blk_len from the input, bounded by the block.
    let length = Int(block.load(fromByteOffset: offsetBlockLength, as: UInt32.self)) % (blockSize + 1)
    block.storeBytes(of: UInt32(length), toByteOffset: offsetBlockLength, as: UInt32.self)
    return length
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 24 else { return 0 }
    // The used length: the handler may see bytes up to blk_len only.
    var used = load(data, size)
    let count = Int(block.load(fromByteOffset: offsetNumPackets, as: UInt32.self))
    let options = data[size - 1]
    let snapLength = options & 1 == 0 ? 262_144 : 64 + Int(data[size - 2])
    var handler = TouchingHandler(start: UnsafeRawPointer(block), end: UnsafeRawPointer(block + used), snapLength: snapLength)
    let walked = BlockWalk.walk(block: block, queue: 0, snapLength: snapLength, reinsertVLAN: options & 2 == 0, handler: &handler)
    precondition(walked == count, "walk returned \(walked) for num_pkts \(count)")
    precondition(handler.packets <= count && handler.blocks == 1)
    sink &+= handler.total

    // The partial walk, from packet `first`, at most `limit` packets.
    used = load(data, size)
    let first = Int(data[size - 3] % 8)
    let limit = Int(data[size - 4] % 8)
    var partial = TouchingHandler(start: UnsafeRawPointer(block), end: UnsafeRawPointer(block + used), snapLength: snapLength)
    let consumed = BlockWalk.walk(block: block, queue: 0, snapLength: snapLength, first: first, limit: limit, handler: &partial)
    precondition(consumed <= limit && partial.packets <= consumed && partial.blocks == 0)
    sink &+= partial.total
    return 0
}
