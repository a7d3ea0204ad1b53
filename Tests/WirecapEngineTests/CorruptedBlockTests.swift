import Testing
@_spi(Harness) @testable import WirecapEngine

/// A block whose kernel-written offsets are corrupted must not make the walk read outside the
/// block's used length (`blk_len`): the walk ends at the first packet that would, after
/// delivering the ones before it. The synthetic block's memory is larger than its used length
/// and zero beyond it, so an unbounded walk reads zeros there and delivers them as packets,
/// which these tests see, rather than crashing the test process.
@Suite("a corrupted block cannot lead the walk outside it")
struct CorruptedBlockTests {
    static let frames = (1...3).map { SyntheticFrame(bytes: ethernetFrame(length: 60 + $0, seed: UInt8($0))) }

    /// A 1 MiB block of three frames with `corrupt` applied to packet `index`'s header.
    static func block(corrupting index: Int, _ corrupt: (UnsafeMutableRawPointer) -> Void) throws -> SyntheticBlock {
        let block = try SyntheticBlock(size: 1 << 20, frames: frames)
        var header = block.pointer + Int(block.pointer.load(fromByteOffset: BlockWalk.offsetFirstPacket, as: UInt32.self))
        for _ in 0..<index { header += Int(header.load(fromByteOffset: BlockWalk.offsetNext, as: UInt32.self)) }
        corrupt(header)
        return block
    }

    static func usedLength(_ block: borrowing SyntheticBlock) -> Int {
        Int(block.pointer.load(fromByteOffset: BlockWalk.offsetBlockLength, as: UInt32.self))
    }

    @Test("tp_next_offset past the used length, shorter than the packet or misaligned: the packets before it, then nothing")
    func nextOffset() throws {
        for bad: UInt32 in [0, 8, 4096, 4097, 600_000, .max] {
            let block = try Self.block(corrupting: 0) { $0.storeBytes(of: bad, toByteOffset: BlockWalk.offsetNext, as: UInt32.self) }
            let (count, handler) = walk(block)
            #expect(count == 3, "the block's packets are consumed either way")
            #expect(handler.seen.map(\.bytes) == [Self.frames[0].bytes], "tp_next_offset \(bad)")
        }
    }

    @Test("tp_mac inside the header or past the used length")
    func mac() throws {
        for bad: UInt16 in [0, 40, 20_000, .max] {
            let block = try Self.block(corrupting: 1) { $0.storeBytes(of: bad, toByteOffset: BlockWalk.offsetMac, as: UInt16.self) }
            let (_, handler) = walk(block)
            #expect(handler.seen.map(\.bytes) == [Self.frames[0].bytes], "tp_mac \(bad)")
        }
    }

    @Test("tp_snaplen that runs past the used length")
    func snapLength() throws {
        for bad: UInt32 in [4096, 100_000, .max] {
            let block = try Self.block(corrupting: 2) { $0.storeBytes(of: bad, toByteOffset: BlockWalk.offsetSnapLength, as: UInt32.self) }
            let (_, handler) = walk(block)
            #expect(handler.seen.map(\.bytes) == Array(Self.frames[0..<2].map(\.bytes)), "tp_snaplen \(bad)")
            #expect(handler.seen.allSatisfy { $0.bytes.count <= 63 })
        }
    }

    @Test("num_pkts larger than the packets in the block: each is delivered once")
    func packetCount() throws {
        let block = try SyntheticBlock(size: 1 << 20, frames: Self.frames)
        block.pointer.storeBytes(of: UInt32(1_000), toByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self)
        let (_, handler) = walk(block)
        #expect(handler.seen.map(\.bytes) == Self.frames.map(\.bytes))
    }

    @Test("the ranged walk skips and delivers within the block too")
    func ranged() throws {
        let block = try Self.block(corrupting: 0) { $0.storeBytes(of: 600_000, toByteOffset: BlockWalk.offsetNext, as: UInt32.self) }
        var handler = RecordingHandler()
        let consumed = BlockWalk.walk(block: block.pointer, queue: 0, snapLength: 262_144, first: 1, limit: 2, handler: &handler)
        #expect(consumed == 2, "a reader still moves past the block's packets")
        #expect(handler.seen.isEmpty)
        #expect(Self.usedLength(block) < 600_000)
    }
}
