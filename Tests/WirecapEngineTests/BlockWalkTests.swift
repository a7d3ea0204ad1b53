import Testing
@_spi(Harness) import WirecapEngine

/// Copies what the walk hands over, so the test can look at it after the block is gone.
struct RecordingHandler: PacketHandler {
    struct Seen: Equatable {
        var bytes: [UInt8]
        var wireLength: Int
        var seconds: UInt32
        var nanoseconds: UInt32
        var queue: Int
    }
    var seen: [Seen] = []
    var blocksDone = 0

    mutating func handle(_ packet: Packet) {
        seen.append(Seen(bytes: Array(packet.bytes), wireLength: packet.wireLength, seconds: packet.seconds, nanoseconds: packet.nanoseconds, queue: packet.queue))
    }

    mutating func blockDone(queue: Int) { blocksDone += 1 }
}

func ethernetFrame(length: Int, seed: UInt8, ethertype: UInt16 = 0x0800) -> [UInt8] {
    var frame = (0..<length).map { UInt8(truncatingIfNeeded: Int(seed) &* 31 &+ $0) }
    frame[12] = UInt8(ethertype >> 8)
    frame[13] = UInt8(ethertype & 0xff)
    return frame
}

func taggedFrame(length: Int, tpid: UInt16, tci: UInt16, seed: UInt8) -> [UInt8] {
    var frame = ethernetFrame(length: length, seed: seed)
    frame[12] = UInt8(tpid >> 8)
    frame[13] = UInt8(tpid & 0xff)
    frame[14] = UInt8(tci >> 8)
    frame[15] = UInt8(tci & 0xff)
    frame[16] = 0x08
    frame[17] = 0x00
    return frame
}

func walk(_ block: borrowing SyntheticBlock, snapLength: Int = 262_144, queue: Int = 0) -> (count: Int, handler: RecordingHandler) {
    var handler = RecordingHandler()
    let count = BlockWalk.walk(block: block.pointer, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &handler)
    return (count, handler)
}

@Suite("Walking TPACKET_V3 blocks")
struct BlockWalkTests {
    @Test("several packets come out in order with their lengths, timestamps and queue")
    func severalPackets() throws {
        let frames = [
            SyntheticFrame(bytes: ethernetFrame(length: 60, seed: 1), seconds: 100, nanoseconds: 1),
            SyntheticFrame(bytes: ethernetFrame(length: 1514, seed: 2), seconds: 101, nanoseconds: 999_999_999),
            SyntheticFrame(bytes: ethernetFrame(length: 98, seed: 3), wireLength: 4000, seconds: 102, nanoseconds: 500),
        ]
        let block = try SyntheticBlock(size: 1 << 16, frames: frames)
        let (count, handler) = walk(block, queue: 3)
        #expect(count == 3)
        #expect(handler.blocksDone == 1)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == frames.map(\SyntheticFrame.bytes))
        #expect(handler.seen.map(\RecordingHandler.Seen.wireLength) == [60, 1514, 4000])
        #expect(handler.seen.map(\RecordingHandler.Seen.seconds) == [100, 101, 102])
        #expect(handler.seen.map(\RecordingHandler.Seen.nanoseconds) == [1, 999_999_999, 500])
        #expect(handler.seen.allSatisfy { $0.queue == 3 })
    }

    @Test("VLAN tags the kernel stripped are put back with their real TPID", arguments: [UInt16(0x8100), 0x88a8, 0x9100])
    func vlanReinsertion(tpid: UInt16) throws {
        let tagged = taggedFrame(length: 102, tpid: tpid, tci: 0xa123, seed: 7)
        let plain = ethernetFrame(length: 64, seed: 8)
        let block = try SyntheticBlock(size: 8192, frames: [
                SyntheticFrame(bytes: tagged, stripVLAN: true), SyntheticFrame(bytes: plain),
                SyntheticFrame(bytes: tagged, stripVLAN: true),
            ])
        let (count, handler) = walk(block)
        #expect(count == 3)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == [tagged, plain, tagged])
        #expect(handler.seen.map(\RecordingHandler.Seen.wireLength) == [102, 64, 102])
    }

    @Test("packets are cut to the snap length, and the wire length is kept")
    func snapLength() throws {
        let long = ethernetFrame(length: 1000, seed: 4)
        let tagged = taggedFrame(length: 500, tpid: 0x8100, tci: 5, seed: 9)
        let short = ethernetFrame(length: 40, seed: 5)
        let block = try SyntheticBlock(size: 8192, frames: [
                SyntheticFrame(bytes: long), SyntheticFrame(bytes: tagged, stripVLAN: true), SyntheticFrame(bytes: short),
            ])
        let (_, handler) = walk(block, snapLength: 96)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == [Array(long.prefix(96)), Array(tagged.prefix(96)), short])
        #expect(handler.seen.map(\RecordingHandler.Seen.wireLength) == [1000, 500, 40])
    }

    @Test("an empty block delivers nothing but still ends the batch")
    func emptyBlock() throws {
        let block = try SyntheticBlock(size: 4096, frames: [])
        let (count, handler) = walk(block)
        #expect(count == 0)
        #expect(handler.seen.isEmpty)
        #expect(handler.blocksDone == 1)
    }

    @Test("frames that do not fit are refused by the builder, as the kernel would start a new block")
    func overflow() {
        #expect(throws: SyntheticBlock.Overflow.self) {
            _ = try SyntheticBlock(size: 4096, frames: [SyntheticFrame(bytes: ethernetFrame(length: 5000, seed: 1))])
        }
    }

    @Test("a full block of small frames walks every one of them")
    func fullBlock() throws {
        var frames: [SyntheticFrame] = []
        var used = 48
        while used + 160 <= 1 << 16 {
            frames.append(SyntheticFrame(bytes: ethernetFrame(length: 60, seed: UInt8(truncatingIfNeeded: frames.count))))
            used += 160
        }
        let block = try SyntheticBlock(size: 1 << 16, frames: frames)
        let (count, handler) = walk(block)
        #expect(count == frames.count)
        #expect(handler.seen.map(\RecordingHandler.Seen.bytes) == frames.map(\SyntheticFrame.bytes))
    }
}
