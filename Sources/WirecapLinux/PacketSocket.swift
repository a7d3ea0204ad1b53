#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// One AF_PACKET raw socket, owned: the descriptor is closed when the last reference goes.
///
/// Each method is one system call (a socket option, bind, send), typed, failing with a
/// `SystemError` that names the operation and the interface given at `init`. The order the calls
/// are made in is the caller's business: the receive ring, the transmit ring and the frame
/// senders each have their own bring-up. This is the only place in wirecap that opens an
/// AF_PACKET socket.
public final class PacketSocket: Sendable {
    public let descriptor: Int32
    /// The interface this socket is for, named in its errors (nil: not about one interface).
    public let interface: String?

    /// ETH_P_ALL: every protocol, for `bind` of a capture socket.
    public static let allProtocols = UInt16(ETH_P_ALL)

    /// Opens a raw packet socket (close-on-exec) that receives `protocol` (an ETH_P_* value in
    /// host order; 0: nothing until a bind names one, which a sender and a ring's bring-up want).
    public init(protocol: UInt16 = 0, interface: String? = nil) throws(SystemError) {
        let fd = CWirecapLinux_packet_socket(Int32(`protocol`))
        try check(fd, "opening a packet socket", interface: interface)
        descriptor = fd
        self.interface = interface
    }

    deinit { close(descriptor) }

    /// A call on this socket that returns -1 with errno on failure.
    @inline(__always)
    private func call(_ result: Int32, _ operation: @autoclosure () -> String) throws(SystemError) {
        try check(result, operation(), interface: interface)
    }

    private func setOption(level: Int32, _ name: Int32, _ value: Int32, _ operation: @autoclosure () -> String) throws(SystemError) {
        try call(CWirecapLinux_set_int_option(descriptor, level, name, value), operation())
    }

    // MARK: set-up

    /// The TPACKET header format of the socket's rings.
    public enum Version: Sendable {
        /// Fixed-size frames, one packet each: what the transmit ring uses.
        case v2
        /// Variable-size packets packed into blocks retired as a whole: what the receive ring uses.
        case v3
    }

    /// PACKET_VERSION; before any ring is set up.
    public func setVersion(_ version: Version) throws(SystemError) {
        let (value, name) = version == .v2 ? (TPACKET_V2.rawValue, "V2") : (TPACKET_V3.rawValue, "V3")
        try setOption(level: SOL_PACKET, PACKET_VERSION, Int32(value), "selecting TPACKET_\(name)")
    }

    /// PACKET_RESERVE: bytes of headroom the kernel leaves in front of each received packet.
    public func setReserve(_ bytes: Int) throws(SystemError) {
        try setOption(level: SOL_PACKET, PACKET_RESERVE, Int32(bytes), "reserving \(bytes) bytes of headroom")
    }

    /// PACKET_VNET_HDR: each transmitted frame starts with a struct virtio_net_hdr.
    public func setVirtioNetHeader(_ enabled: Bool) throws(SystemError) {
        try setOption(level: SOL_PACKET, PACKET_VNET_HDR, enabled ? 1 : 0, "enabling virtio-net headers")
    }

    /// PACKET_QDISC_BYPASS: frames go straight to the driver, unseen by other packet sockets on
    /// the sending side.
    public func setQdiscBypass(_ enabled: Bool) throws(SystemError) {
        try setOption(level: SOL_PACKET, PACKET_QDISC_BYPASS, enabled ? 1 : 0, "bypassing the qdisc")
    }

    /// SO_SNDBUF, or with `force` SO_SNDBUFFORCE (CAP_NET_ADMIN: past net.core.wmem_max).
    public func setSendBufferSize(_ bytes: Int, force: Bool = false) throws(SystemError) {
        let value = Int32(clamping: bytes)
        try setOption(level: SOL_SOCKET, force ? SO_SNDBUFFORCE : SO_SNDBUF, value, "setting the send buffer to \(value) bytes")
    }

    /// PACKET_RX_RING with a tpacket_req3 (after `setVersion(.v3)`). `frameSize` is not used by
    /// TPACKET_V3, but the kernel still checks that it is aligned and divides the block.
    public func setUpReceiveRing(blockSize: Int, blockCount: Int, frameSize: Int = 2048, blockTimeoutMilliseconds: Int) throws(SystemError) {
        try call(
            CWirecapLinux_setup_rx_ring(descriptor, UInt32(blockSize), UInt32(blockCount), UInt32(frameSize), UInt32(blockTimeoutMilliseconds)),
            "creating the receive ring (\(blockCount) blocks of \(blockSize) bytes)")
    }

    /// PACKET_TX_RING with a tpacket_req (after `setVersion`); `frameSize` must divide the block.
    public func setUpTransmitRing(blockSize: Int, blockCount: Int, frameSize: Int) throws(SystemError) {
        try call(
            CWirecapLinux_setup_tx_ring(descriptor, UInt32(blockSize), UInt32(blockCount), UInt32(frameSize)),
            "creating the transmit ring (\(blockCount) blocks of \(blockSize) bytes, frames of \(frameSize))")
    }

    /// Maps the socket's rings (receive first, then transmit, as the kernel lays them out) into
    /// this process, shared with the kernel.
    public func mapRings(byteCount: Int) throws(SystemError) -> RingMapping {
        let memory = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0)
        guard let memory, memory != MAP_FAILED else {
            throw SystemError(.current, operation: "mapping the ring (\(byteCount) bytes)", interface: interface)
        }
        return RingMapping(base: memory, byteCount: byteCount, socket: self)
    }

    /// Binds to one interface and protocol (host order; 0: the socket receives nothing, which
    /// suits a sender). Traffic starts to flow into a receive ring from here on.
    public func bind(interfaceIndex: Int32, protocol: UInt16 = 0) throws(SystemError) {
        try call(CWirecapLinux_bind(descriptor, interfaceIndex, Int32(`protocol`)), "binding the socket")
    }

    /// PACKET_ADD_MEMBERSHIP with PACKET_MR_PROMISC: the interface is promiscuous while this
    /// socket is open (the kernel counts memberships, so it is never turned off under another).
    public func addPromiscuousMembership(interfaceIndex: Int32) throws(SystemError) {
        try call(CWirecapLinux_set_promiscuous(descriptor, interfaceIndex), "enabling promiscuous mode")
    }

    // MARK: fanout

    /// PACKET_FANOUT flags, or'd into the mode.
    public struct FanoutFlags: OptionSet, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// Spill to another member when this one's ring is full.
        public static let rollover = FanoutFlags(rawValue: UInt16(PACKET_FANOUT_FLAG_ROLLOVER))
        /// The kernel picks an unused group id (read it back with `fanoutGroup()`).
        public static let uniqueID = FanoutFlags(rawValue: UInt16(PACKET_FANOUT_FLAG_UNIQUEID))
        /// Reassemble IP fragments before the hash, so fragments of a flow stay together.
        public static let defragment = FanoutFlags(rawValue: UInt16(PACKET_FANOUT_FLAG_DEFRAG))
    }

    /// Joins (or, the first member, creates) fanout group `group` with `mode` (PACKET_FANOUT_HASH,
    /// _LB, _CPU, _QM ...). The socket must be bound.
    public func joinFanout(group: UInt16, mode: UInt16, flags: FanoutFlags = []) throws(SystemError) {
        try call(
            CWirecapLinux_join_fanout(descriptor, group, mode, flags.rawValue),
            flags.contains(.uniqueID) ? "creating a fanout group" : "joining fanout group \(group)")
    }

    /// The id of the fanout group the socket is in.
    public func fanoutGroup() throws(SystemError) -> UInt16 {
        var group: UInt16 = 0
        try call(CWirecapLinux_fanout_group_id(descriptor, &group), "reading the fanout group id")
        return group
    }

    // MARK: filters

    /// Replaces the socket's filter with a classic BPF program (as libpcap compiles), atomically
    /// for the socket. The kernel refuses an invalid program with `.invalidArgument`.
    public func attachFilter(_ program: [BPFInstruction]) throws(SystemError) {
        // sock_fprog counts in 16 bits: a longer program cannot even be described to the kernel,
        // and a clamped count would attach a truncated one. The kernel's answer for too long.
        guard let length = UInt16(exactly: program.count) else {
            throw SystemError(.invalidArgument, operation: "installing a \(program.count)-instruction filter", interface: interface)
        }
        let instructions = program.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
        let rc = instructions.withUnsafeBufferPointer { CWirecapLinux_attach_filter(descriptor, $0.baseAddress, length) }
        try call(rc, "installing a \(program.count)-instruction filter")
    }

    /// Replaces the socket's filter with the one instruction `ret #k`: 0 drops everything, a snap
    /// length accepts everything and cuts it in the kernel, so the rest is never copied.
    public func attachReturnFilter(_ k: UInt32) throws(SystemError) {
        try call(CWirecapLinux_attach_ret_filter(descriptor, k), k == 0 ? "installing the drop-all filter" : "installing the filter `ret #\(k)`")
    }

    // MARK: statistics

    /// PACKET_STATISTICS (TPACKET_V3): counts since the last read, which resets them.
    public struct Statistics: Equatable, Sendable {
        /// Packets the filter accepted, including those dropped for want of ring space.
        public var packets: UInt64
        /// Accepted packets dropped because the ring was full.
        public var drops: UInt64
        /// Times the kernel froze the queue (a ring full for a whole block).
        public var freezes: UInt64
    }

    public func statistics() throws(SystemError) -> Statistics {
        var s = Statistics(packets: 0, drops: 0, freezes: 0)
        try call(CWirecapLinux_read_stats(descriptor, &s.packets, &s.drops, &s.freezes), "reading the packet statistics")
        return s
    }

    /// SO_ERROR: the error the kernel has posted on the socket (`ENETDOWN` when the interface
    /// went down), or nil; reading it clears it. While it is posted, `poll` reports POLLERR at
    /// once on every call, so a loop that polls must read it.
    public func pendingError() throws(SystemError) -> Errno? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        try call(getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &value, &length), "reading the socket's pending error")
        return value == 0 ? nil : Errno(rawValue: value)
    }

    /// PACKET_ROLLOVER_STATS: cumulative, never reset.
    public struct RolloverStatistics: Equatable, Sendable {
        /// Packets moved to another member.
        public var all: UInt64
        /// Of those, moved because this member was a huge flow's.
        public var huge: UInt64
        /// Packets that found no member with room.
        public var failed: UInt64
    }

    /// Fails with `.invalidArgument` unless the socket joined its group with `.rollover`.
    public func rolloverStatistics() throws(SystemError) -> RolloverStatistics {
        var s = RolloverStatistics(all: 0, huge: 0, failed: 0)
        try call(CWirecapLinux_read_rollover_stats(descriptor, &s.all, &s.huge, &s.failed), "reading the rollover statistics")
        return s
    }

    // MARK: sending

    /// Sends one frame (send(2), the socket bound to an interface); returns the bytes taken.
    /// `.noBufferSpace` or `.wouldBlock` (`isBusy`) mean the device queue is full: try again.
    @inline(__always)
    public func send(_ frame: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        let n = Glibc.send(descriptor, frame.baseAddress, frame.count, 0)
        if n < 0 { throw SystemError(.current, operation: "sending a \(frame.count)-byte frame", interface: interface) }
        return n
    }

    /// Sends `lengths.count` frames (at most 1024) laid out back to back from `frames`, with one
    /// sendmmsg(2). Returns how many were sent; an error is about the first frame not sent.
    @inline(__always)
    public func send(frames: UnsafeRawPointer, lengths: UnsafeBufferPointer<UInt32>) throws(SystemError) -> Int {
        guard let first = lengths.baseAddress, lengths.count > 0 else { return 0 }
        let n = CWirecapLinux_send_batch(
            descriptor, frames.assumingMemoryBound(to: UInt8.self), first, UInt32(min(lengths.count, 1024)))
        if n < 0 { throw SystemError(.current, operation: "sending a batch of frames", interface: interface) }
        return Int(n)
    }

    /// Asks the kernel to send every frame of the transmit ring marked for sending, without
    /// waiting for the driver (send(fd, NULL, 0, MSG_DONTWAIT)). Returns the bytes handed over.
    @inline(__always)
    public func kickTransmitRing() throws(SystemError) -> Int {
        let n = CWirecapLinux_tx_kick(descriptor)
        if n < 0 { throw SystemError(.current, operation: "handing the transmit ring to the kernel", interface: interface) }
        return n
    }
}

/// A socket's rings mapped into this process, unmapped when the owner goes. It holds the socket:
/// the kernel frees a ring when its socket closes, and complains if it is still mapped then.
public struct RingMapping: ~Copyable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    public let socket: PacketSocket

    init(base: UnsafeMutableRawPointer, byteCount: Int, socket: PacketSocket) {
        self.base = base
        self.byteCount = byteCount
        self.socket = socket
    }

    deinit { munmap(base, byteCount) }
}

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
public struct BPFInstruction: Equatable, Sendable {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8, jf: UInt8, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }
}
