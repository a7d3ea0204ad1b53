/// WireCAP's offloading decision for one buddy group, with hysteresis.
///
/// A queue is *overloaded* once its backlog (filled chunks waiting for its work thread) exceeds
/// the high mark `T x capacity`. From then on each chunk it captures goes to the least-loaded
/// buddy that is below the high mark and not offloading itself; if there is none, the chunk stays
/// local. The queue keeps offloading until its backlog falls to the low mark, half the high mark.
///
/// Why the hysteresis: without it, a queue at the mark offloads one chunk, drops under it, takes
/// the next chunk locally, crosses again, and flips on every chunk; and two loaded buddies would
/// throw chunks at each other. A queue that is offloading is never a target, which rules out
/// ping-pong between buddies.
package struct OffloadPolicy: Sendable {
    /// T, in 0...1: a fraction of a queue's capture-queue capacity.
    package let threshold: Double
    /// Backlog above which a queue starts offloading.
    package let highMark: Double
    /// Backlog at or below which it stops.
    package let lowMark: Double

    package init(threshold: Double, capacity: Int) {
        precondition((0...1).contains(threshold) && capacity > 0)
        self.threshold = threshold
        highMark = threshold * Double(capacity)
        lowMark = highMark / 2
    }

    /// Where the next chunk captured by `owner` goes, given every member's backlog, updating which
    /// members are offloading. `offloading` and `backlogs` are indexed alike; `members` lists the
    /// indices that belong to the group.
    @inlinable
    package func target(
        owner: Int, members: UnsafeBufferPointer<Int>, backlogs: UnsafeBufferPointer<Int>, offloading: UnsafeMutableBufferPointer<Bool>
    ) -> Int {
        let own = Double(backlogs[owner])
        if offloading[owner] {
            if own <= lowMark { offloading[owner] = false }
        } else if own > highMark {
            offloading[owner] = true
        }
        guard offloading[owner] else { return owner }
        var best = owner
        var bestBacklog = Int.max
        for member in members where member != owner {
            let backlog = backlogs[member]
            if offloading[member] {
                // A buddy's own flag only changes when it captures; one that went quiet while
                // offloading would otherwise never be a target again.
                guard Double(backlog) <= lowMark else { continue }
                offloading[member] = false
            }
            if Double(backlog) < highMark && backlog < bestBacklog {
                best = member
                bestBacklog = backlog
            }
        }
        return best
    }
}
