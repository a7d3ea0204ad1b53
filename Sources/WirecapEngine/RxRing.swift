#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// One AF_PACKET socket with its TPACKET_V3 receive ring mapped into this process.
///
/// Opening follows libpcap's bring-up order: a socket with protocol 0 (no traffic yet), a
/// drop-all filter so nothing enters the ring before the fanout group is complete, the TPACKET
/// version, headroom for VLAN reinsertion, the ring, the mapping, and only then the bind that
/// starts traffic. The socket is closed and the ring unmapped when the last reference goes.
@usableFromInline
final class RxRing: @unchecked Sendable {
    // @unchecked: the mapping is written by the kernel and read only by the one capture thread
    // that owns this queue once capture has started; the rest is immutable.
    @usableFromInline let fd: Int32
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let blockSize: Int
    @usableFromInline let blockCount: Int
    let interface: String

    init(interface: String, ifindex: Int32, geometry: RingGeometry) throws(CaptureError) {
        self.interface = interface
        let fd = CWirecapLinux_packet_socket(0)
        if fd < 0 {
            if errno == EPERM || errno == EACCES { throw .missingPrivilege(interface: interface) }
            throw .system(operation: "opening a packet socket for \(interface)", errno: errno)
        }
        var mapped: UnsafeMutableRawPointer? = nil
        do throws(CaptureError) {
            _ = try systemCall("installing the drop-all filter on \(interface)", CWirecapLinux_attach_ret_filter(fd, 0))
            _ = try systemCall(
                "selecting TPACKET_V3 on \(interface)",
                CWirecapLinux_set_int_option(fd, SOL_PACKET, PACKET_VERSION, Int32(TPACKET_V3.rawValue)))
            _ = try systemCall(
                "reserving VLAN headroom on \(interface)",
                CWirecapLinux_set_int_option(fd, SOL_PACKET, PACKET_RESERVE, Int32(CaptureConfiguration.vlanReserve)))
            // The frame size is not used by TPACKET_V3 (packets are packed into blocks), but the
            // kernel still checks that it is aligned and divides the block.
            if CWirecapLinux_setup_rx_ring(
                fd, UInt32(geometry.blockSize), UInt32(geometry.blockCount), 2048,
                UInt32(geometry.blockTimeoutMilliseconds)) != 0
            {
                let code = errno
                if code == ENOMEM {
                    throw .configuration(
                        .ringAllocationFailed(interface: interface, blockSize: geometry.blockSize, blockCount: geometry.blockCount))
                }
                throw .system(operation: "creating the receive ring on \(interface) (\(geometry.blockCount) blocks of \(geometry.blockSize) bytes)", errno: code)
            }
            let memory = mmap(nil, geometry.ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if memory == MAP_FAILED {
                throw .system(operation: "mapping the receive ring of \(interface)", errno: errno)
            }
            mapped = memory
            if CWirecapLinux_bind(fd, ifindex, Int32(ETH_P_ALL)) != 0 {
                let code = errno
                if code == ENETDOWN { throw .interfaceDown(interface) }
                if code == ENODEV { throw .noSuchInterface(interface) }
                throw .system(operation: "binding to \(interface)", errno: code)
            }
        } catch {
            if let mapped { munmap(mapped, geometry.ringBytes) }
            close(fd)
            throw error
        }
        self.fd = fd
        self.base = mapped!
        self.blockSize = geometry.blockSize
        self.blockCount = geometry.blockCount
    }

    deinit {
        munmap(base, blockSize * blockCount)
        close(fd)
    }

    @inlinable @inline(__always)
    func block(_ index: Int) -> UnsafeMutableRawPointer { base + index * blockSize }

    func setPromiscuous(ifindex: Int32) throws(CaptureError) {
        _ = try systemCall("enabling promiscuous mode on \(interface)", CWirecapLinux_set_promiscuous(fd, ifindex))
    }

    /// Replaces the socket's filter with `program`, atomically for the socket.
    func setFilter(_ program: [BPFInstruction]) throws(CaptureError) {
        let instructions = program.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
        let rc = instructions.withUnsafeBufferPointer { CWirecapLinux_attach_filter(fd, $0.baseAddress, UInt16($0.count)) }
        if rc != 0 {
            if errno == EINVAL { throw .configuration(.filterRefused(interface: interface)) }
            throw .system(operation: "installing the capture filter on \(interface)", errno: errno)
        }
    }

    /// Replaces the socket's filter with `ret #k` (0: drop all; snap length: accept and cut).
    @usableFromInline
    func setReturnFilter(_ k: UInt32) throws(CaptureError) {
        _ = try systemCall("installing the capture filter on \(interface)", CWirecapLinux_attach_ret_filter(fd, k))
    }
}
