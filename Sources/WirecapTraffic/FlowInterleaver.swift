/// Which flow each packet of the trace belongs to: every packet picks a flow with probability
/// proportional to the packets that flow has left.
///
/// Drawing by remaining packets is the same as shuffling the trace's packets uniformly at
/// random: each flow's packets are spread over the whole trace, so the mix a capture sees (and
/// the elephant's share of every second) stays the same from start to end. The alternative, round
/// robin over a window of active flows with arrivals, models flow start and end times but leaves
/// the end of the trace to the few longest flows alone, which would make a drop-rate experiment
/// depend on where in the trace it looks. Replay can loop or cut this trace anywhere.
///
/// The remaining counts live in a Fenwick tree (Fenwick, "A new data structure for cumulative
/// frequency tables", Software: Practice and Experience 24(3), 1994), so a pick and its
/// decrement cost O(log flows) and the tree is one machine word per flow, built in place.
public struct FlowInterleaver: Sendable {
    private var tree: [Int]
    private let topBit: Int
    public private(set) var remaining: Int

    public init(sizes: [Int]) {
        tree = sizes
        remaining = sizes.reduce(0, +)
        // Linear-time construction: each node adds itself into its parent.
        for index in stride(from: 1, through: tree.count, by: 1) {
            let parent = index + (index & -index)
            if parent <= tree.count { tree[parent - 1] += tree[index - 1] }
        }
        var bit = 1
        while bit << 1 <= tree.count { bit <<= 1 }
        topBit = tree.isEmpty ? 0 : bit
    }

    /// The flow of the next packet, taken out of that flow's remaining count. nil once every
    /// packet has been placed.
    public mutating func next(_ random: inout SplitMix64) -> Int? {
        guard remaining > 0 else { return nil }
        // The flow whose cumulative range holds a uniform target in 0..<remaining.
        var target = Int(random.next(below: UInt64(remaining)))
        var position = 0
        var bit = topBit
        while bit > 0 {
            let next = position + bit
            if next <= tree.count && tree[next - 1] <= target {
                position = next
                target -= tree[next - 1]
            }
            bit >>= 1
        }
        // `position` counts the flows wholly before the target: the pick is flow `position`.
        var index = position + 1
        while index <= tree.count {
            tree[index - 1] -= 1
            index += index & -index
        }
        remaining -= 1
        return position
    }
}
