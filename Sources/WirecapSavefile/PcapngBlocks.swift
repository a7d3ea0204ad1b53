/// The pcapng blocks `SavefileWriter` writes (draft-ietf-opsawg-pcapng): one Section Header
/// Block, one Interface Description Block whose `if_tsresol` says micro or nanoseconds, then one
/// Enhanced Packet Block per record. libpcap 1.10 reads pcapng but has no writer for it, so this
/// is the smallest correct writer rather than a dependency.
///
/// Every field is written little-endian whatever the host, which the byte-order magic allows
/// (readers swap as needed), so the same packets give the same bytes on every machine.
enum PcapngBlocks {
    /// The file's first two blocks: the section (byte-order magic, version 1.0, length unknown,
    /// `shb_userappl` naming the writer) and its one interface (link type, snap length,
    /// `if_tsresol` 6 or 9: 10^-6 or 10^-9 s).
    static func header(linkType: Int32, snapLength: Int, precision: TimestampPrecision, application: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var options: [UInt8] = []
        appendOption(code: 4, value: Array(application.utf8), to: &options)
        appendOption(code: 0, value: [], to: &options)  // opt_endofopt
        let shbLength = UInt32(28 + options.count)
        append(UInt32(0x0A0D_0D0A), to: &bytes)
        append(shbLength, to: &bytes)
        append(UInt32(0x1A2B_3C4D), to: &bytes)
        append(UInt16(1), to: &bytes)
        append(UInt16(0), to: &bytes)
        append(UInt64.max, to: &bytes)
        bytes += options
        append(shbLength, to: &bytes)

        options = []
        appendOption(code: 9, value: [precision == .nano ? 9 : 6], to: &options)
        appendOption(code: 0, value: [], to: &options)
        let idbLength = UInt32(20 + options.count)
        append(UInt32(1), to: &bytes)
        append(idbLength, to: &bytes)
        append(UInt16(truncatingIfNeeded: LinkType.fileValue(linkType)), to: &bytes)
        append(UInt16(0), to: &bytes)
        append(UInt32(truncatingIfNeeded: snapLength), to: &bytes)
        bytes += options
        append(idbLength, to: &bytes)
        return bytes
    }

    /// Bytes an Enhanced Packet Block takes for `captured` bytes: 28 of header, the data padded
    /// to 4 bytes, the trailing length.
    @inline(__always)
    static func enhancedPacketLength(captured: Int) -> Int { 32 + ((captured + 3) & ~3) }

    /// Writes an Enhanced Packet Block on interface 0 at `at`, which has room for
    /// `enhancedPacketLength(captured: bytes.count)` bytes. `timestamp` is in the interface's
    /// unit.
    @inline(__always)
    static func writeEnhancedPacket(at p: UnsafeMutableRawPointer, bytes: UnsafeRawBufferPointer, wireLength: Int, timestamp: UInt64) {
        let captured = bytes.count
        let blockLength = UInt32(truncatingIfNeeded: enhancedPacketLength(captured: captured))
        p.storeBytes(of: UInt32(6).littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: blockLength.littleEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: timestamp >> 32).littleEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: timestamp).littleEndian, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: captured).littleEndian, toByteOffset: 20, as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: wireLength).littleEndian, toByteOffset: 24, as: UInt32.self)
        if let base = bytes.baseAddress { (p + 28).copyMemory(from: base, byteCount: captured) }
        // Zero the padding: the same packets must give the same bytes.
        let padded = (captured + 3) & ~3
        if padded > captured { (p + 28 + captured).initializeMemory(as: UInt8.self, repeating: 0, count: padded - captured) }
        p.storeBytes(of: blockLength.littleEndian, toByteOffset: 28 + padded, as: UInt32.self)
    }

    private static func appendOption(code: UInt16, value: [UInt8], to options: inout [UInt8]) {
        append(code, to: &options)
        append(UInt16(truncatingIfNeeded: value.count), to: &options)
        options += value
        while options.count % 4 != 0 { options.append(0) }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}
