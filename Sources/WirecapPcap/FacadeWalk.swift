import WirecapEngine

/// How a live `dispatch` walks one chunk: the facade's whole per-packet path, kept apart so the
/// benchmark (Benchmarks/, "Facade dispatch") measures exactly what `dispatch` runs.
///
/// A chunk read from its start with room for all of it (the common case) goes through the
/// engine's own whole-block walk, the loop the engine's work threads run; a chunk that a count
/// cuts, or that is resumed, through the ranged walk. The handler is passed `inout`, never
/// copied: a copied handler that owns a dictionary (an IDS's flow table) would be copied on its
/// next write. Neither walk calls `blockDone`: `dispatch` calls it once per call.
public enum FacadeWalk {
    /// Hands packets `first..<first+limit` of the chunk to `handler`; returns how many it walked.
    @inlinable
    public static func walk<H: PacketHandler>(
        chunk: UnsafeMutableRawPointer, packets: Int, owner: Int, snapLength: Int, first: Int, limit: Int, handler: inout H
    ) -> Int {
        if first == 0 && limit >= packets {
            return BlockWalk.walk(block: chunk, queue: owner, snapLength: snapLength, reinsertVLAN: true, handler: &handler, blockDone: false)
        }
        return BlockWalk.walk(block: chunk, queue: owner, snapLength: snapLength, first: first, limit: limit, handler: &handler)
    }
}
