import Synchronization
import WirecapEngine

/// How a live `dispatch` walks one chunk: the facade's whole per-packet path, kept apart so the
/// benchmark (Benchmarks/, "Facade dispatch") measures exactly what `dispatch` runs.
///
/// Packets `first..<first+limit` of the chunk go to the handler, and after each one the reader's
/// break flag is read (one relaxed load), so `breakLoop()` takes effect after the packet in hand,
/// as pcap_breakloop does on Linux, not at the end of the chunk. The handler is passed `inout`,
/// never copied: a copied handler that owns a dictionary (an IDS's flow table) would be copied on
/// its next write. The walk does not call `blockDone`: `dispatch` calls it once per call.
public enum FacadeWalk {
    /// Hands packets `first..<first+limit` of the chunk to `handler`, stopping early after a
    /// packet once `breaking` is set; returns how many it walked.
    @inlinable
    public static func walk<H: PacketHandler>(
        chunk: UnsafeMutableRawPointer, packets: Int, owner: Int, snapLength: Int, first: Int, limit: Int, handler: inout H,
        breaking: borrowing Atomic<Bool>
    ) -> Int {
        BlockWalk.walk(block: chunk, queue: owner, snapLength: snapLength, first: first, limit: limit, handler: &handler) {
            breaking.load(ordering: .relaxed)
        }
    }
}
