#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapLinux

/// Why a frame was not sent. Every frame handed to a replay is either sent or counted here.
public enum FrameRefusal: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Longer than the interface's MTU plus the Ethernet header (plus 4 bytes with an 802.1Q tag).
    case overMTU
    /// Shorter than the 14-byte Ethernet header.
    case runt
    /// Refused by the kernel (TP_STATUS_WRONG_FORMAT) for another reason, with its errno.
    case kernel(errno: Int32)

    public var description: String {
        switch self {
        case .overMTU: return "over the MTU"
        case .runt: return "runt, shorter than an Ethernet header"
        case .kernel(let code): return "refused by the kernel: \(String(cString: strerror(code)))"
        }
    }

    /// The kernel's own rule (net/packet/af_packet.c) for a raw frame on a device, applied before
    /// the frame goes into the ring: nil when it may be sent.
    @inline(__always)
    public static func of(length: Int, frame: UnsafeRawBufferPointer, mtu: Int, ethernet: Bool) -> FrameRefusal? {
        if length < 14 { return .runt }
        if length <= mtu + 14 { return nil }
        // One 802.1Q tag may come on top, on Ethernet devices only (packet_extra_vlan_len_allowed).
        if ethernet && length <= mtu + 18 && frame[12] == 0x81 && frame[13] == 0x00 { return nil }
        return .overMTU
    }
}

/// One AF_PACKET socket with a TPACKET_V2 transmit ring, bound with protocol 0 (it never
/// receives) and by default bypassing the qdisc, so frames go straight to the driver.
///
/// Frames are put into the ring in order (`put`), handed to the kernel with one `send` per batch
/// (`kick`), and taken back in order once the kernel marks them available again (`reclaim`),
/// which is when they count as sent. A frame the kernel refuses (TP_STATUS_WRONG_FORMAT) stops
/// the kernel at that slot; `reclaim` counts it by reason and moves the frames queued behind it
/// one slot back so that they still go out, in order. A busy device or a full socket budget is
/// not a refusal: the kernel leaves the frame marked for sending and the next kick retries it.
/// Use from one thread at a time: the counters skip Swift's dynamic exclusivity checks, which
/// cost a runtime call per frame (`swift_beginAccess`, seen in the forwarder's disassembly).
public final class TxRing {
    public let interface: String
    public let mtu: Int
    /// Whether the device is Ethernet (ARPHRD_ETHER) rather than loopback.
    public let isEthernet: Bool
    /// The longest frame a slot holds.
    public let slotCapacity: Int
    /// Frames in the ring.
    public let frameCount: Int
    /// Frames up to this many bytes are copied whole into the kernel's socket buffer; longer ones
    /// have only their Ethernet header copied and the rest attached zero-copy from the ring's
    /// pages (see `init`). 0: no virtio-net header at all, every frame zero-copy.
    public let copyLimit: Int
    /// Bytes in front of each frame's bytes: the virtio-net header when `copyLimit` > 0.
    let prefix: Int
    let frameSize: Int
    let ringBytes: Int
    let socket: PacketSocket
    let base: UnsafeMutableRawPointer
    /// Holds the socket; unmaps the ring before the socket closes.
    private let mapping: RingMapping

    /// The oldest slot handed to the kernel and not yet taken back, and the slot to fill next.
    @exclusivity(unchecked) var oldest = 0
    @exclusivity(unchecked) var next = 0
    /// Frames handed to the kernel and not yet taken back.
    @exclusivity(unchecked) public private(set) var inFlight = 0
    /// Frames put in the ring since the last kick.
    @exclusivity(unchecked) public private(set) var unkicked = 0
    @exclusivity(unchecked) public private(set) var sent = 0
    @exclusivity(unchecked) public private(set) var bytes = 0
    public private(set) var refused: [FrameRefusal: Int] = [:]
    /// Kicks the kernel answered with "busy" (EAGAIN/ENOBUFS: device queue or socket buffer full).
    public private(set) var busyKicks = 0
    var lastError: Errno? = nil

    static let dataOffset = Int(CWirecapLinux_TX_DATA)
    static let lengthOffset = Int(CWirecapLinux_TX_LEN)
    static let ownerMask = UInt32(CWirecapLinux_TX_STATUS_OWNER_MASK)
    static let wrongFormat = UInt32(CWirecapLinux_TX_STATUS_WRONG_FORMAT)
    static let maximumRingBytes = 16 << 20
    /// Copy frames up to this length (see `copyLimit`).
    public static let defaultCopyLimit = 65536

    /// Opens the ring on `interface` (in the calling thread's network namespace).
    /// - Parameters:
    ///   - interface: the interface to send on, by name.
    ///   - slotCapacity: the longest frame a slot holds, at most and by default MTU + 18 (an
    ///     Ethernet header and one VLAN tag), the longest the kernel accepts. Give the longest
    ///     frame to be sent, so that small frames sit close together.
    ///   - frames: frames in the ring (rounded to whole blocks; fewer for large MTUs, so the
    ///     ring stays within 16 MiB).
    ///   - copyLimit: frames up to this length go into the socket buffer by copy, longer ones
    ///     zero-copy. Zero-copy saves a copy on a real NIC, but a device that hands the frame to
    ///     another namespace (veth) or to local receivers must first copy the fragments out of the
    ///     ring into freshly allocated pages (skb_copy_ubufs), which costs more than the copy:
    ///     measured on veth (docs/experiments.md). Asking for a copy needs PACKET_VNET_HDR, which
    ///     also turns off the kernel's own MTU check, so frames are checked before they go in
    ///     (`refusal(of:)`). 0: no virtio-net header, every frame zero-copy, the kernel checks.
    ///   - bypassQdisc: hand frames straight to the driver (PACKET_QDISC_BYPASS), the fastest
    ///     path; false keeps the interface's qdisc, so traffic control (shaping, priorities,
    ///     `tc` statistics) applies to what is sent, at the price of the qdisc's lock per frame.
    public init(
        interface: String, slotCapacity: Int? = nil, frames: Int = 4096, copyLimit: Int = TxRing.defaultCopyLimit, bypassQdisc: Bool = true
    ) throws(CaptureError) {
        self.interface = interface
        self.copyLimit = max(0, copyLimit)
        prefix = copyLimit > 0 ? Int(CWirecapLinux_TX_VNET_SIZE) : 0
        let device: NetworkInterface
        do { device = try NetworkInterface(named: interface) } catch { throw CaptureError(error, activity: .send) }
        if !device.isUp { throw .interfaceDown(interface, activity: .send) }
        if !device.isRunning { throw .noLink(interface, activity: .send) }
        guard device.linkType.carriesEthernetHeaders else {
            throw .unsupportedLinkType(interface: interface, arphrd: Int(device.linkType.rawValue), activity: .send)
        }
        isEthernet = device.isEthernet
        mtu = device.mtu
        let largest = mtu + 18
        self.slotCapacity = max(14, min(slotCapacity ?? largest, largest))
        // A power of two, so that frames tile blocks exactly; at least 128 bytes.
        var frameSize = 128
        while frameSize < Self.dataOffset + prefix + self.slotCapacity { frameSize *= 2 }
        self.frameSize = frameSize
        let blockSize = max(frameSize, 1 << 16)
        let framesPerBlock = blockSize / frameSize
        let wanted = max(framesPerBlock, min(max(1, frames), Self.maximumRingBytes / frameSize))
        let blockCount = (wanted + framesPerBlock - 1) / framesPerBlock
        frameCount = blockCount * framesPerBlock
        let ringBytes = blockCount * blockSize
        self.ringBytes = ringBytes

        let socket: PacketSocket
        do throws(SystemError) {
            socket = try PacketSocket(interface: interface)
            try socket.setVersion(.v2)
            if self.copyLimit > 0 { try socket.setVirtioNetHeader(true) }
            if bypassQdisc { try socket.setQdiscBypass(true) }
        } catch {
            throw CaptureError(error, activity: .send)
        }
        // Room in the socket's send budget for the whole ring in flight (root may force it;
        // otherwise the kernel's default applies and a full budget only means a busy kick).
        let budget = min(ringBytes * 2, Int(Int32.max / 2))
        if (try? socket.setSendBufferSize(budget, force: true)) == nil {
            _ = try? socket.setSendBufferSize(budget)
        }
        do throws(SystemError) {
            try socket.setUpTransmitRing(blockSize: blockSize, blockCount: blockCount, frameSize: frameSize)
        } catch {
            if error.errno == .outOfMemory {
                throw .configuration(.transmitRingAllocationFailed(interface: interface, bytes: ringBytes))
            }
            throw CaptureError(error, activity: .send)
        }
        do throws(SystemError) {
            mapping = try socket.mapRings(byteCount: ringBytes)
            try socket.bind(interfaceIndex: device.index)
        } catch {
            throw CaptureError(error, activity: .send)
        }
        self.socket = socket
        self.base = mapping.base
    }

    @inline(__always)
    func frame(_ slot: Int) -> UnsafeMutableRawPointer { base + slot * frameSize }

    @inline(__always)
    func after(_ slot: Int) -> Int { slot + 1 == frameCount ? 0 : slot + 1 }

    /// Whether a frame can be put now.
    public var hasRoom: Bool { inFlight < frameCount }

    /// Why the kernel would refuse this frame on this interface, or nil.
    @inline(__always)
    public func refusal(of frame: UnsafeRawBufferPointer) -> FrameRefusal? {
        FrameRefusal.of(length: frame.count, frame: frame, mtu: mtu, ethernet: isEthernet)
    }

    /// Copies `bytes` into the next slot and marks it for sending; it leaves at the next `kick`.
    /// Needs `hasRoom`. Frames longer than a slot are counted as over the MTU, not put.
    @inline(__always)
    public func put(_ bytes: UnsafeRawBufferPointer) {
        precondition(inFlight < frameCount, "put into a full transmit ring")
        guard bytes.count <= slotCapacity else {
            refused[.overMTU, default: 0] += 1
            return
        }
        let source = bytes.baseAddress ?? UnsafeRawPointer(base)
        if prefix == 0 {
            CWirecapLinux_tx_fill(frame(next), source, UInt32(bytes.count))
        } else {
            // The kernel copies at least the Ethernet header; runts keep their length, so that
            // the kernel still sees (and refuses) them as runts.
            let linear = bytes.count <= copyLimit ? bytes.count : min(bytes.count, 14)
            CWirecapLinux_tx_fill_vnet(frame(next), source, UInt32(bytes.count), UInt16(min(linear, 65535)))
        }
        next = after(next)
        inFlight += 1
        unkicked += 1
    }

    /// Why the kernel would refuse `frame` once `tag` (TPID << 16 | TCI, 0: none) is inserted
    /// after its MAC addresses (`put(_:tag:)`), or nil.
    @inline(__always)
    public func refusal(of frame: UnsafeRawBufferPointer, tag: UInt32) -> FrameRefusal? {
        guard tag != 0 else { return refusal(of: frame) }
        let length = frame.count + 4
        if frame.count < 14 { return .runt }
        if length <= mtu + 14 { return nil }
        if isEthernet && length <= mtu + 18 && tag >> 16 == 0x8100 { return nil }
        return .overMTU
    }

    /// `put`, with a VLAN tag (TPID << 16 | TCI; 0: none) inserted after the MAC addresses in the
    /// same copy. Needs `hasRoom` and at least 12 bytes.
    @inline(__always)
    public func put(_ bytes: UnsafeRawBufferPointer, tag: UInt32) {
        guard tag != 0 else { return put(bytes) }
        precondition(inFlight < frameCount && bytes.count >= 12, "put into a full transmit ring, or a tag into a runt")
        guard bytes.count + 4 <= slotCapacity else {
            refused[.overMTU, default: 0] += 1
            return
        }
        let length = bytes.count + 4
        let linear = prefix == 0 ? 0 : (length <= copyLimit ? length : 14)
        CWirecapLinux_tx_fill_tagged(frame(next), bytes.baseAddress!, UInt32(bytes.count), UInt16(min(linear, 65535)), UInt32(prefix), tag)
        next = after(next)
        inFlight += 1
        unkicked += 1
    }

    /// Asks the kernel to send every frame put so far, without waiting for the driver. A busy
    /// device or a full socket budget leaves frames queued for the next kick; a refused frame is
    /// found by `reclaim`. Throws only when the interface went away.
    public func kick() throws(CaptureError) {
        unkicked = 0
        do throws(SystemError) {
            _ = try socket.kickTransmitRing()
        } catch {
            if error.isBusy {
                busyKicks += 1
            } else if error.errno == .networkDown || error.isNoSuchInterface {
                throw CaptureError(error, activity: .send)
            } else {
                lastError = error.errno
            }
        }
    }

    /// Takes back, in ring order, the frames the kernel is done with (counted as sent) or refused
    /// (counted by reason). Returns how many frames left the ring either way.
    @discardableResult
    public func reclaim() -> Int {
        var done = 0
        while inFlight > 0 {
            let f = frame(oldest)
            let status = CWirecapLinux_tx_status_acquire(f)
            if status & Self.ownerMask == 0 {
                sent += 1
                bytes += Int(f.load(fromByteOffset: Self.lengthOffset, as: UInt32.self)) - prefix
                oldest = after(oldest)
                inFlight -= 1
                done += 1
            } else if status == Self.wrongFormat {
                refuseOldest()
                done += 1
            } else {
                break
            }
        }
        return done
    }

    /// The kernel refused the frame in the oldest slot and stopped there: count it, and move each
    /// frame behind it (all still waiting to be sent) one slot back, so they go out in order.
    func refuseOldest() {
        let f = frame(oldest)
        let length = Int(f.load(fromByteOffset: Self.lengthOffset, as: UInt32.self)) - prefix
        let bytes = UnsafeRawBufferPointer(start: f + Self.dataOffset + prefix, count: max(0, min(length, slotCapacity)))
        let reason = FrameRefusal.of(length: length, frame: bytes, mtu: mtu, ethernet: isEthernet) ?? .kernel(errno: (lastError ?? .invalidArgument).rawValue)
        refused[reason, default: 0] += 1
        var slot = oldest
        for _ in 1..<inFlight {
            let source = after(slot)
            let from = frame(source)
            CWirecapLinux_tx_fill(frame(slot), from + Self.dataOffset, from.load(fromByteOffset: Self.lengthOffset, as: UInt32.self))
            slot = source
        }
        CWirecapLinux_tx_status_release(frame(slot), UInt32(CWirecapLinux_TX_STATUS_AVAILABLE))
        next = slot
        inFlight -= 1
        if inFlight > 0 { unkicked += 1 }
    }

    /// Kicks and reclaims until `done()` holds, waiting politely when the kernel has nothing to
    /// give back. Throws when nothing left the ring for `stallNanoseconds`.
    public func serviceUntil(stallNanoseconds: UInt64 = 5_000_000_000, _ done: () -> Bool) throws(CaptureError) {
        var lastProgress = CWirecapLinux_monotonic_ns()
        var idle = 0
        while true {
            try kick()
            if reclaim() > 0 {
                lastProgress = CWirecapLinux_monotonic_ns()
                idle = 0
            }
            if done() { return }
            idle += 1
            if idle < 64 {
                sched_yield()
            } else {
                usleep(50)
                if CWirecapLinux_monotonic_ns() - lastProgress > stallNanoseconds {
                    throw .transmitStalled(
                        interface: interface, seconds: stallNanoseconds / 1_000_000_000, waiting: inFlight, lastError: lastError)
                }
            }
        }
    }

    /// Sends everything put so far and waits until each frame is sent or refused.
    public func finish(stallNanoseconds: UInt64 = 5_000_000_000) throws(CaptureError) {
        try serviceUntil(stallNanoseconds: stallNanoseconds) { inFlight == 0 }
    }
}
