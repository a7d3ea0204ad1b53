import Foundation

/// How many packets a flow has: a Pareto distribution, P(size > x) = (minimum / x)^shape for
/// x >= minimum.
///
/// The shape follows Crovella and Bestavros, "Self-Similarity in World Wide Web Traffic:
/// Evidence and Possible Causes", IEEE/ACM Transactions on Networking 5(6):835-846, December
/// 1997, section V-B: from 130,140 Web transfers they estimate the tail index of transmission
/// times at 1.21 (least-squares fit to the LLCD plot; Hill estimator near 1.2), of requested file
/// sizes at about 1.22, and of transferred sizes at 1.15 (Hill estimator between 1.0 and 1.2).
/// We take shape = 1.2: heavy enough that the largest flows carry a large part of the packets
/// (the variance is infinite, the mean finite: 6 x minimum), as on real links.
///
/// Two simplifications, said here so nobody mistakes them for measurements: the paper fits the
/// power law only to the upper tail (transfers above about 10,000 bytes) and counts bytes; we
/// count packets and extend the law down to `minimum` (default 1 packet, so that single-packet
/// flows are the most common size, 56 % of flows). And one draw is capped at `maximum` so that
/// a single unlucky draw (the tail is unbounded) cannot ask for a trace of 10^13 packets.
public struct FlowSizeModel: Sendable, Equatable {
    /// Crovella and Bestavros 1997, section V-B (see above).
    public static let crovellaBestavrosShape = 1.2

    public var shape: Double
    /// Packets in the smallest flow (the Pareto scale x_m).
    public var minimum: Int
    /// Packets in the largest flow one draw can give.
    public var maximum: Int

    public init(shape: Double = FlowSizeModel.crovellaBestavrosShape, minimum: Int = 1, maximum: Int = 1_000_000_000) {
        precondition(shape > 0 && minimum >= 1 && maximum >= minimum, "a Pareto model needs shape > 0 and 1 <= minimum <= maximum")
        self.shape = shape
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The mean flow size of the uncapped model, in packets (before rounding down to whole
    /// packets): shape x minimum / (shape - 1), infinite for shape <= 1.
    public var mean: Double { shape > 1 ? shape * Double(minimum) / (shape - 1) : .infinity }

    /// A continuous draw, minimum x U^(-1/shape) by inversion of the distribution function,
    /// capped at `maximum`.
    public func weight(_ random: inout SplitMix64) -> Double {
        let x = Double(minimum) * pow(random.nextUnitInterval(), -1 / shape)
        return min(x, Double(maximum))
    }

    /// One flow size in whole packets: the draw rounded down, so P(size >= k) = (minimum / k)^shape.
    public func draw(_ random: inout SplitMix64) -> Int {
        Int(weight(&random).rounded(.down))
    }
}
