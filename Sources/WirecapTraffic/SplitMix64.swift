/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014; the constants are those of Vigna's public-domain `splitmix64.c`).
///
/// A synthetic trace must be the same file for the same seed, on every machine and with every
/// Swift release. `SystemRandomNumberGenerator` cannot be seeded, and the standard library's
/// `random(in:using:)` may change how it turns random bits into a value, so every draw the
/// synthesiser makes goes through the three functions below, whose arithmetic is fixed here.
/// SplitMix64 passes BigCrush, needs one word of state, and every seed (0 included) is good.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: the top 53 bits, shifted up by one step so that 0 never comes out
    /// (a Pareto draw divides by a power of it).
    public mutating func nextUnitInterval() -> Double {
        Double((next() >> 11) + 1) * 0x1p-53
    }

    /// Uniform in 0..<bound, without modulo bias (Lemire's multiply-shift with rejection,
    /// "Fast random integer generation in an interval", ACM TOMACS 2019).
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be positive")
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }
}
