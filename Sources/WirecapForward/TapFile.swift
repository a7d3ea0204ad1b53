#if canImport(Glibc)
import Glibc
#endif
import WirecapEngine
import WirecapSavefile

/// `--tap PATH`: a savefile of every frame sent on the main output, as it was sent (a pushed tag
/// in place), with its capture time.
///
/// One file for every queue. A forwarding thread takes the lock at the first frame of a chunk it
/// writes and keeps it until the chunk has been sent (`release`): a lock per chunk, not per
/// frame, and a chunk's frames stay together in the file.
/// Frames of one queue are written in the order they are put into that queue's ring.
@usableFromInline
final class TapFile: @unchecked Sendable {
    // @unchecked: `writer` and `scratch` are used only with `lock` held.
    @usableFromInline let writer: SavefileWriter
    @usableFromInline let lock = Monitor()
    /// Room for the longest frame with a tag pushed in: the tag is written in here, since the
    /// chunk has no room for it.
    @usableFromInline let scratch: UnsafeMutableRawPointer
    @usableFromInline let scratchSize: Int

    init(path: String, snapLength: Int) throws(SavefileError) {
        writer = try SavefileWriter(path: path, snapLength: snapLength + 4, precision: .nano, application: "wirecap-fwd")
        scratchSize = snapLength + 4
        scratch = .allocate(byteCount: scratchSize, alignment: 16)
    }

    deinit { scratch.deallocate() }

    /// Writes one frame (the lock held by the caller).
    @inlinable
    func write(_ bytes: UnsafeRawBufferPointer, tag: UInt32, seconds: UInt32, nanoseconds: UInt32) {
        var frame = bytes
        if tag != 0 && bytes.count >= 12 && bytes.count + 4 <= scratchSize {
            scratch.copyMemory(from: bytes.baseAddress!, byteCount: 12)
            scratch.storeBytes(of: tag.bigEndian, toByteOffset: 12, as: UInt32.self)
            (scratch + 16).copyMemory(from: bytes.baseAddress! + 12, byteCount: bytes.count - 12)
            frame = UnsafeRawBufferPointer(start: scratch, count: bytes.count + 4)
        }
        writer.write(bytes: frame, wireLength: frame.count, seconds: Int(seconds), nanoseconds: Int(nanoseconds))
    }

    /// Flushes and closes the file once every thread is done with it.
    func close() throws(SavefileError) {
        lock.lock()
        defer { lock.unlock() }
        try writer.close()
    }
}
