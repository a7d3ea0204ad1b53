import Foundation
import WirecapTrace

/// Writes a pcapng file: one Section Header Block, one Interface Description Block with
/// `if_tsresol` = 9 (nanosecond timestamps), then one Enhanced Packet Block per packet
/// (draft-ietf-opsawg-pcapng). libpcap 1.10 reads pcapng but has no writer for it, so this is
/// the smallest correct writer rather than a dependency.
///
/// Every field is written little-endian whatever the host, which the byte-order magic allows
/// (readers swap as needed), so the same packets give the same bytes on every machine. Output is
/// buffered (1 MiB) and written with write(2); errors come back as `TraceError`, as from
/// `PcapWriter`. Like `PcapWriter`, one writer is not for two threads at once.
public final class PcapngWriter {
    public let path: String
    // Touched on every packet by the one thread that writes, as in PcapWriter: Swift's dynamic
    // exclusivity checks on class properties would cost a runtime call per access.
    @exclusivity(unchecked) private var descriptor: Int32
    private let ownsDescriptor: Bool
    @exclusivity(unchecked) private var buffer: [UInt8] = []
    private static let flushThreshold = 1 << 20

    /// `path` "-" writes to standard output.
    public init(path: String, linkType: UInt16 = 1, snapLength: Int, application: String = "wirecap") throws(TraceError) {
        self.path = path
        if path == "-" {
            descriptor = STDOUT_FILENO
            ownsDescriptor = false
        } else {
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            ownsDescriptor = true
            guard descriptor >= 0 else {
                throw TraceError(path: path, reason: String(cString: strerror(errno)), hint: "choose a writable path")
            }
        }
        buffer.reserveCapacity(Self.flushThreshold + 65_536)
        // Section Header Block: byte-order magic, version 1.0, section length unknown (-1), and
        // shb_userappl naming the writer.
        var options: [UInt8] = []
        Self.appendOption(code: 4, value: Array(application.utf8), to: &options)
        Self.appendOption(code: 0, value: [], to: &options)  // opt_endofopt
        let shbLength = 28 + options.count
        append32(0x0A0D_0D0A)
        append32(UInt32(shbLength))
        append32(0x1A2B_3C4D)
        append16(1)
        append16(0)
        append64(UInt64.max)
        buffer += options
        append32(UInt32(shbLength))
        // Interface Description Block: link type, snap length, if_tsresol = 9 (10^-9 s).
        options = []
        Self.appendOption(code: 9, value: [9], to: &options)
        Self.appendOption(code: 0, value: [], to: &options)
        let idbLength = 20 + options.count
        append32(1)
        append32(UInt32(idbLength))
        append16(linkType)
        append16(0)
        append32(UInt32(snapLength))
        buffer += options
        append32(UInt32(idbLength))
    }

    /// Appends one Enhanced Packet Block on interface 0.
    public func write(bytes: UnsafeRawBufferPointer, wireLength: Int, seconds: Int, nanoseconds: Int) throws(TraceError) {
        let padded = (bytes.count + 3) & ~3
        let blockLength = UInt32(32 + padded)
        let timestamp = UInt64(seconds) &* 1_000_000_000 &+ UInt64(nanoseconds)
        append32(6)
        append32(blockLength)
        append32(0)
        append32(UInt32(truncatingIfNeeded: timestamp >> 32))
        append32(UInt32(truncatingIfNeeded: timestamp))
        append32(UInt32(bytes.count))
        append32(UInt32(wireLength))
        buffer.append(contentsOf: bytes)
        for _ in bytes.count..<padded { buffer.append(0) }
        append32(blockLength)
        if buffer.count >= Self.flushThreshold { try flush() }
    }

    public func flush() throws(TraceError) {
        guard descriptor >= 0 else { return }
        var failure: Int32 = 0
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
        if failure != 0 {
            throw TraceError(path: path, reason: "writing failed: \(String(cString: strerror(failure)))", hint: "check free space on the file system")
        }
    }

    public func close() throws(TraceError) {
        guard descriptor >= 0 else { return }
        var failure: TraceError?
        do { try flush() } catch { failure = error }
        // close(2) is where some file systems (NFS, full quotas) report a delayed write error.
        if ownsDescriptor && Foundation.close(descriptor) != 0 && failure == nil {
            failure = TraceError(path: path, reason: "writing failed: \(String(cString: strerror(errno)))", hint: "check free space on the file system")
        }
        descriptor = -1
        if let failure { throw failure }
    }

    deinit { try? close() }

    private static func appendOption(code: UInt16, value: [UInt8], to options: inout [UInt8]) {
        options += [UInt8(truncatingIfNeeded: code), UInt8(truncatingIfNeeded: code >> 8)]
        options += [UInt8(truncatingIfNeeded: value.count), UInt8(truncatingIfNeeded: value.count >> 8)]
        options += value
        while options.count % 4 != 0 { options.append(0) }
    }

    @inline(__always) private func append16(_ value: UInt16) {
        buffer.append(UInt8(truncatingIfNeeded: value))
        buffer.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    @inline(__always) private func append32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { buffer.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    @inline(__always) private func append64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { buffer.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
