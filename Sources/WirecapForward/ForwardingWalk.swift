#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine

/// The per-packet path of one forwarding thread: the verdict, the MTU check, one copy into a TX
/// ring of the chunk's owner queue; one kick per chunk (`blockDone`), never a send per packet.
///
/// It runs in one of two ways (see `ForwardQueue` for when):
/// - in order (the usual case): decide and put in one pass, `BlockWalk` calling `handle`;
/// - deferred, for a chunk that an earlier chunk of its owner has not yet left before: decide
///   only (`decideOnly`), noting each frame's outcome in its own TPACKET3 header, and later put
///   the noted frames in a second pass (`transmitNoted`), when the chunk's turn comes.
///
/// A full TX ring is waited out, not dropped: the thread keeps its lease meanwhile, the lease
/// keeps a chunk out of the pool, and an empty pool leaves blocks in the RX ring, so a slow
/// output ends as capture drops counted by the kernel, never as a silent loss here.
@usableFromInline
struct ForwardingWalk<H: VerdictHandler>: PacketHandler {
    @usableFromInline var handler: H
    /// The owner queue's TX ring on the main output, on each additional output, and on the tap.
    /// Unmanaged: the `ForwardQueue` that owns the rings outlives every walk over them, and a
    /// strong reference read from this (mutable) walk cost a retain and a release per frame sent
    /// (seen in the disassembly), since `waitForRoom` could in principle replace it meanwhile.
    @usableFromInline var mainRing: Unmanaged<TxRing>
    @usableFromInline var otherRings: [Unmanaged<TxRing>]
    @usableFromInline var tapRing: Unmanaged<TxRing>?
    /// The tap's savefile (shared by every queue), and whether this walk holds its lock now.
    @usableFromInline var tapFile: Unmanaged<TapFile>?
    @usableFromInline var holdsTapFile = false
    /// Counts since the last publish.
    @usableFromInline var tally = ForwardTally()
    /// How long a ring may take no frame back before the output counts as failed.
    @usableFromInline let stallNanoseconds: UInt64
    /// Set once the output failed (the interface went away, or the ring stalled): frames that
    /// find no room are counted as TX errors from then on instead of waiting again.
    @usableFromInline var failure: CaptureError? = nil
    /// In the deciding pass: the header of the packet being decided, where its outcome is noted.
    @usableFromInline var noting: UnsafeMutableRawPointer? = nil
    /// In the deciding pass: frames noted for sending so far.
    @usableFromInline var noted: UInt64 = 0

    @inlinable
    init(handler: H, rings: ForwardQueue, stallNanoseconds: UInt64) {
        self.handler = handler
        mainRing = .passUnretained(rings.main)
        otherRings = rings.others.map { .passUnretained($0) }
        tapRing = rings.tap.map { .passUnretained($0) }
        tapFile = rings.tapFile.map { .passUnretained($0) }
        self.stallNanoseconds = stallNanoseconds
    }

    /// Turns to `queue`'s rings, taking over its output's failure, if any.
    @inlinable
    mutating func use(_ queue: ForwardQueue, failure: CaptureError?) {
        if mainRing.toOpaque() != Unmanaged.passUnretained(queue.main).toOpaque() {
            mainRing = .passUnretained(queue.main)
            otherRings = queue.others.map { .passUnretained($0) }
            tapRing = queue.tap.map { .passUnretained($0) }
        }
        self.failure = failure
    }

    @inlinable
    mutating func handle(_ packet: Packet) {
        var frame = ForwardFrame(packet)
        let output = decide(&frame)
        if let header = noting {
            FrameNote.write(output: output, frame: frame, into: header)
            if output != FrameNote.nowhere { noted += 1 }
        } else if output != FrameNote.nowhere {
            send(UnsafeRawBufferPointer(frame.bytes), tag: frame.pushedTag, output: output, seconds: frame.seconds, nanoseconds: frame.nanoseconds)
        }
    }

    /// The verdict and the checks: returns the output the frame goes to, or `FrameNote.nowhere`
    /// (counted here: a verdict drop, too big, or an output that does not exist).
    @inlinable @inline(__always)
    mutating func decide(_ frame: inout ForwardFrame) -> Int {
        guard let output = handler.verdict(&frame).output else {
            tally.verdictDrops += 1
            return FrameNote.nowhere
        }
        let ring: Unmanaged<TxRing>
        if output == 0 {
            ring = mainRing
        } else if output > 0 && output <= otherRings.count {
            ring = otherRings[output - 1]
        } else {
            tally.txErrors += 1
            return FrameNote.nowhere
        }
        // Checked here because the ring's virtio-net header turns off the kernel's own check
        // (TxRing.init); a frame the capture cut would go out truncated.
        if let refusal = ring._withUnsafeGuaranteedRef({ $0.refusal(of: UnsafeRawBufferPointer(frame.bytes), tag: frame.pushedTag) }) {
            if refusal == .overMTU { tally.tooBig += 1 } else { tally.txErrors += 1 }
            return FrameNote.nowhere
        }
        if frame.outgoingLength < frame.wireLength {
            tally.tooBig += 1
            return FrameNote.nowhere
        }
        return output
    }

    /// One copy into the output's ring, after waiting for a slot if it is full.
    @inlinable @inline(__always)
    mutating func send(_ bytes: UnsafeRawBufferPointer, tag: UInt32, output: Int, seconds: UInt32, nanoseconds: UInt32) {
        let ring = output == 0 ? mainRing : otherRings[output - 1]
        if !ring._withUnsafeGuaranteedRef({ $0.hasRoom }) && !waitForRoom(ring.takeUnretainedValue()) {
            tally.txErrors += 1
            return
        }
        ring._withUnsafeGuaranteedRef { $0.put(bytes, tag: tag) }
        tally.put += 1
        if output == 0, let tap = tapRing { copy(bytes, tag: tag, to: tap) }
        if output == 0, let tapFile { record(bytes, tag: tag, seconds: seconds, nanoseconds: nanoseconds, in: tapFile) }
    }

    /// A copy into the tap's savefile; the file's lock is taken at the chunk's first frame and
    /// kept until the chunk has been sent (`service`).
    @inlinable
    mutating func record(_ bytes: UnsafeRawBufferPointer, tag: UInt32, seconds: UInt32, nanoseconds: UInt32, in file: Unmanaged<TapFile>) {
        file._withUnsafeGuaranteedRef { file in
            if !holdsTapFile {
                file.lock.lock()
                holdsTapFile = true
            }
            file.write(bytes, tag: tag, seconds: seconds, nanoseconds: nanoseconds)
        }
        tally.tapCopies += 1
    }

    /// A copy for the tap: put if its ring has room after one kick and reclaim, dropped (and
    /// counted) otherwise, so a slow tap costs copies, never forwarding.
    @inlinable
    mutating func copy(_ bytes: UnsafeRawBufferPointer, tag: UInt32, to ring: Unmanaged<TxRing>) {
        let tap = ring.takeUnretainedValue()
        if !tap.hasRoom { serviceTap(tap) }
        if tap.hasRoom && tap.refusal(of: bytes, tag: tag) == nil {
            tap.put(bytes, tag: tag)
            tally.tapCopies += 1
        } else {
            tally.tapDrops += 1
        }
    }

    /// Kicks the tap and takes back what the kernel is done with; a copy it refused is a tap drop.
    @inlinable
    mutating func serviceTap(_ tap: TxRing) {
        let sentBefore = tap.sent
        let waitingBefore = tap.inFlight
        try? tap.kick()
        tap.reclaim()
        tally.tapDrops += UInt64((waitingBefore - tap.inFlight) - (tap.sent - sentBefore))
    }

    /// The deciding pass of a chunk that must wait for its turn: every frame gets its verdict and
    /// checks now (the handler's work, on this thread) and a note in its header; nothing is sent.
    /// Returns how many frames are to be sent.
    @inlinable
    mutating func decideOnly(block: UnsafeMutableRawPointer, queue: Int, snapLength: Int) -> UInt64 {
        noted = 0
        BlockWalk.forEachPacketHeader(block: block) { header in
            noting = header
            BlockWalk.deliver(packet: header, queue: queue, snapLength: snapLength, reinsertVLAN: true, handler: &self)
        }
        noting = nil
        return noted
    }

    /// The sending pass of a chunk decided by `decideOnly`: puts the noted frames, then kicks.
    /// Returns how many frames it tried to send (put, or counted as TX errors).
    @inlinable @discardableResult
    mutating func transmitNoted(block: UnsafeMutableRawPointer) -> UInt64 {
        var tried: UInt64 = 0
        BlockWalk.forEachPacketHeader(block: block) { header in
            let note = FrameNote(header)
            guard note.output != FrameNote.nowhere else { return }
            tried += 1
            send(note.bytes(header), tag: note.tag, output: note.output, seconds: note.seconds, nanoseconds: note.nanoseconds)
        }
        service()
        return tried
    }

    /// One kick per chunk: the kernel sends what this chunk put while the next one is fetched.
    @inlinable
    mutating func blockDone(queue: Int) { service() }

    /// Kicks the rings and takes back what the kernel is done with; returns how many came back.
    @inlinable @discardableResult
    mutating func service() -> Int {
        var left = service(main)
        for ring in otherRings { left += service(ring.takeUnretainedValue()) }
        if let tap, tap.inFlight > 0 { serviceTap(tap) }
        if holdsTapFile, let tapFile {
            tapFile._withUnsafeGuaranteedRef { $0.lock.unlock() }
            holdsTapFile = false
        }
        return left
    }

    @inlinable
    mutating func service(_ ring: TxRing) -> Int {
        var failed: CaptureError? = nil
        let left = counting(ring) {
            if ring.inFlight > 0 {
                do throws(CaptureError) { try ring.kick() } catch { failed = error }
            }
            ring.reclaim()
        }
        if let failed { failure = failure ?? failed }
        return left
    }

    /// The rings as references, for what runs once per chunk or less.
    @inlinable var main: TxRing { mainRing.takeUnretainedValue() }
    @inlinable var others: [TxRing] { otherRings.map { $0.takeUnretainedValue() } }
    @inlinable var tap: TxRing? { tapRing?.takeUnretainedValue() }

    /// Frames put and not yet sent or refused, on every output.
    @inlinable
    var inFlight: Int { otherRings.reduce(main.inFlight) { $0 + $1.takeUnretainedValue().inFlight } }

    /// Sends what every ring holds and waits until the kernel took it back (at the end).
    @inlinable
    mutating func finish() {
        let stall = stallNanoseconds
        for ring in [main] + others {
            var failed: CaptureError? = nil
            counting(ring) {
                do throws(CaptureError) { try ring.finish(stallNanoseconds: stall) } catch { failed = error }
            }
            if let failed { failure = failure ?? failed }
        }
        // The tap gets what it can take within a second; what it holds after is dropped there.
        if let tap {
            let deadline = CWirecapLinux_monotonic_ns() + 1_000_000_000
            while tap.inFlight > 0 && CWirecapLinux_monotonic_ns() < deadline {
                serviceTap(tap)
                if tap.inFlight > 0 { usleep(100) }
            }
            tally.tapDrops += UInt64(tap.inFlight)
        }
    }

    /// Waits for a free TX slot (the ring's own wait: kick, reclaim, yield, then sleep, a stall
    /// after `stallNanoseconds`); false when the output failed.
    @usableFromInline
    mutating func waitForRoom(_ ring: TxRing) -> Bool {
        if failure != nil { return false }
        tally.txRingFullWaits += 1
        let stall = stallNanoseconds
        var failed: CaptureError? = nil
        counting(ring) {
            do throws(CaptureError) { try ring.serviceUntil(stallNanoseconds: stall) { ring.hasRoom } } catch { failed = error }
        }
        if let failed { failure = failure ?? failed }
        return ring.hasRoom
    }

    /// Runs `body` (nothing is put meanwhile) and counts the frames that left `ring`: those the
    /// kernel sent as forwarded, those it refused as TX errors. Returns how many left.
    @inlinable @discardableResult
    mutating func counting(_ ring: TxRing, _ body: () -> Void) -> Int {
        let sentBefore = ring.sent
        let waitingBefore = ring.inFlight
        body()
        let left = waitingBefore - ring.inFlight
        let sent = ring.sent - sentBefore
        tally.forwarded += UInt64(sent)
        tally.txErrors += UInt64(left - sent)
        return left
    }
}

/// A frame's outcome, noted in its own TPACKET3 header between the deciding and the sending pass
/// of a deferred chunk: where the frame's bytes start (a verdict may have popped a tag), their
/// length, the output, and a tag to push.
///
/// It lives in the header's link-layer address (`sockaddr_ll`, bytes 48..<60 of the header),
/// which the chunk is a private copy of and nothing reads after capture. The frame starts at
/// least `TPACKET3_HDRLEN` (68) bytes after the header (`BlockWalk` checks it), and putting a
/// VLAN tag back writes only the 4 bytes before the frame, so the note and the frame never meet.
@usableFromInline
struct FrameNote {
    @usableFromInline static let nowhere = -1
    @usableFromInline static let offset = 48
    @usableFromInline let start: UInt16
    @usableFromInline let rawOutput: UInt16
    @usableFromInline let length: UInt32
    @usableFromInline let tag: UInt32
    /// The capture time, from the header itself (the note leaves it alone).
    @usableFromInline let seconds: UInt32
    @usableFromInline let nanoseconds: UInt32

    @inlinable @inline(__always)
    init(_ header: UnsafeMutableRawPointer) {
        start = header.load(fromByteOffset: Self.offset, as: UInt16.self)
        rawOutput = header.load(fromByteOffset: Self.offset + 2, as: UInt16.self)
        length = header.load(fromByteOffset: Self.offset + 4, as: UInt32.self)
        tag = header.load(fromByteOffset: Self.offset + 8, as: UInt32.self)
        seconds = header.load(fromByteOffset: BlockWalk.offsetSeconds, as: UInt32.self)
        nanoseconds = header.load(fromByteOffset: BlockWalk.offsetNanoseconds, as: UInt32.self)
    }

    @inlinable var output: Int { rawOutput == UInt16.max ? Self.nowhere : Int(rawOutput) }

    @inlinable @inline(__always)
    func bytes(_ header: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: header + Int(start), count: Int(length))
    }

    @inlinable @inline(__always)
    static func write(output: Int, frame: ForwardFrame, into header: UnsafeMutableRawPointer) {
        let start = frame.bytes.baseAddress.map { $0 - header } ?? 0
        header.storeBytes(of: UInt16(truncatingIfNeeded: start), toByteOffset: offset, as: UInt16.self)
        header.storeBytes(of: output == nowhere ? UInt16.max : UInt16(output), toByteOffset: offset + 2, as: UInt16.self)
        header.storeBytes(of: UInt32(frame.bytes.count), toByteOffset: offset + 4, as: UInt32.self)
        header.storeBytes(of: frame.pushedTag, toByteOffset: offset + 8, as: UInt32.self)
    }
}
