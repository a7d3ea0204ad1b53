import FuzzSupport
import Glibc
import WirecapSavefile

// Fuzzes SavefileReader (libpcap's offline reader behind it, pcap and pcapng): the input is
// written to a file on tmpfs (the reader takes a path), opened, and every record read, both as
// a copy and borrowed; every byte of each record is touched. Any error is fine; a trap, a crash
// or a record whose bytes are not readable is a finding.

nonisolated(unsafe) var inputPath = inputFilePath("savefile")
nonisolated(unsafe) var sink: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard writeInput(data, size, to: inputPath) else { return 0 }
    for precision in [TimestampPrecision.nano, .micro] {
        guard let reader = try? SavefileReader(path: inputPath, precision: precision) else { continue }
        var total: UInt64 = UInt64(bitPattern: Int64(reader.linkType)) &+ UInt64(reader.snapLength)
        if precision == .nano {
            while let record = try? reader.nextBorrowed() {
                for byte in record.bytes { total &+= UInt64(byte) }
                total &+= UInt64(bitPattern: Int64(record.wireLength &+ record.seconds &+ record.nanoseconds))
            }
        } else {
            if let records = try? reader.readAll() {
                for record in records {
                    for byte in record.bytes { total &+= UInt64(byte) }
                    total &+= UInt64(bitPattern: Int64(record.wireLength &+ record.seconds &+ record.nanoseconds))
                }
            }
        }
        reader.close()
        sink &+= total
    }
    return 0
}
