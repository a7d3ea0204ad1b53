import CWirecapLinux
import WirecapLinux

/// One AF_PACKET socket with its TPACKET_V3 receive ring mapped into this process.
///
/// Opening follows libpcap's bring-up order: a socket with protocol 0 (no traffic yet), a
/// drop-all filter so nothing enters the ring before the fanout group is complete, the TPACKET
/// version, headroom for VLAN reinsertion, the ring, the mapping, and only then the bind that
/// starts traffic. The ring is unmapped and the socket closed when the last reference goes.
@usableFromInline
final class RxRing: @unchecked Sendable {
    // @unchecked: the mapping is written by the kernel and read only by the one capture thread
    // that owns this queue once capture has started; the rest is immutable.
    @usableFromInline let socket: PacketSocket
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let blockSize: Int
    @usableFromInline let blockCount: Int
    let interface: String
    /// Holds the socket; unmaps the ring before the socket closes.
    private let mapping: RingMapping

    init(interface: NetworkInterface, geometry: RingGeometry) throws(CaptureError) {
        self.interface = interface.name
        let socket: PacketSocket
        do throws(SystemError) {
            socket = try PacketSocket(interface: interface.name)
            try socket.attachReturnFilter(0)
            try socket.setVersion(.v3)
            try socket.setReserve(CaptureConfiguration.vlanReserve)
        } catch {
            throw CaptureError(error)
        }
        do throws(SystemError) {
            try socket.setUpReceiveRing(
                blockSize: geometry.blockSize, blockCount: geometry.blockCount, blockTimeoutMilliseconds: geometry.blockTimeoutMilliseconds)
        } catch {
            if error.errno == .outOfMemory {
                throw .configuration(
                    .ringAllocationFailed(interface: interface.name, blockSize: geometry.blockSize, blockCount: geometry.blockCount))
            }
            throw CaptureError(error)
        }
        do throws(SystemError) {
            mapping = try socket.mapRings(byteCount: geometry.ringBytes)
            try socket.bind(interfaceIndex: interface.index, protocol: PacketSocket.allProtocols)
        } catch {
            throw CaptureError(error)
        }
        self.socket = socket
        self.base = mapping.base
        self.blockSize = geometry.blockSize
        self.blockCount = geometry.blockCount
    }

    /// The socket's descriptor, for `poll`.
    @usableFromInline var fd: Int32 { socket.descriptor }

    @inlinable @inline(__always)
    func block(_ index: Int) -> UnsafeMutableRawPointer { base + index * blockSize }

    /// Packets in the ring, counted in the blocks themselves: every block's `num_pkts`. Exact
    /// only while nobody takes blocks (after the capture thread has finished) and only because
    /// the capture thread zeroes `num_pkts` before it gives a block back: a block the kernel has
    /// not reopened then counts 0, and the kernel resets it when it does (`prb_open_block`) and
    /// counts each packet it adds to the block it is filling.
    func packetsHeld() -> UInt64 {
        var packets: UInt64 = 0
        for i in 0..<blockCount {
            // A block lent in place is counted where its lease is (queued or in a handler); its
            // count is zeroed before the status says it is back.
            if LentBlocks.isLent(CWirecapLinux_block_status_acquire(block(i))) { continue }
            packets += UInt64(block(i).load(fromByteOffset: BlockWalk.offsetNumPackets, as: UInt32.self))
        }
        return packets
    }

    func setPromiscuous(ifindex: Int32) throws(CaptureError) {
        do { try socket.addPromiscuousMembership(interfaceIndex: ifindex) } catch { throw CaptureError(error) }
    }

    /// Replaces the socket's filter with `program`, atomically for the socket.
    func setFilter(_ program: [BPFInstruction]) throws(CaptureError) {
        do throws(SystemError) {
            try socket.attachFilter(program)
        } catch {
            if error.errno == .invalidArgument {
                throw .configuration(.filterRefused(interface: interface))
            }
            throw CaptureError(error)
        }
    }

    /// Replaces the socket's filter with `ret #k` (0: drop all; snap length: accept and cut).
    @usableFromInline
    func setReturnFilter(_ k: UInt32) throws(CaptureError) {
        do { try socket.attachReturnFilter(k) } catch { throw CaptureError(error) }
    }
}
