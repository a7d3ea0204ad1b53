/// A forwarding thread's counts, in frames. The thread adds to one of these as it walks a chunk
/// and publishes it, under its queue's lock, in the same step that ends the chunk's lease (see
/// `ForwardQueue`): a snapshot then finds every frame either still leased (the engine's
/// `inHandler`) or counted here, never both and never neither.
@usableFromInline
package struct ForwardTally: Sendable, Equatable {
    /// Sent by the kernel from the TX ring.
    @usableFromInline package var forwarded: UInt64 = 0
    /// The handler said `.drop`.
    @usableFromInline package var verdictDrops: UInt64 = 0
    /// Longer than OUT's MTU (plus the Ethernet header and one VLAN tag), or cut by the capture.
    @usableFromInline package var tooBig: UInt64 = 0
    /// Frames that found the TX ring full and waited for a slot.
    @usableFromInline package var txRingFullWaits: UInt64 = 0
    /// Refused by the kernel (TP_STATUS_WRONG_FORMAT), or not sent because the output failed.
    @usableFromInline package var txErrors: UInt64 = 0
    /// Frames put into the TX ring (forwarded or refused once the kernel is done with them).
    @usableFromInline package var put: UInt64 = 0
    /// Copies put into the tap's ring, and copies dropped because it was full or refused them.
    @usableFromInline package var tapCopies: UInt64 = 0
    @usableFromInline package var tapDrops: UInt64 = 0

    @inlinable package init() {}

    @inlinable
    package static func += (total: inout ForwardTally, part: ForwardTally) {
        total.forwarded += part.forwarded
        total.verdictDrops += part.verdictDrops
        total.tooBig += part.tooBig
        total.txRingFullWaits += part.txRingFullWaits
        total.txErrors += part.txErrors
        total.put += part.put
        total.tapCopies += part.tapCopies
        total.tapDrops += part.tapDrops
    }
}
