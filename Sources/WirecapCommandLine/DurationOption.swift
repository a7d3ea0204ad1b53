/// `--duration SECONDS` of the commands that run until stopped (`wirecap capture`,
/// `wirecap-fwd`): checked before anything opens, since the deadline is kept in 64-bit
/// nanoseconds and `inf` or `1e11` would trap converting to it.
public enum DurationOption {
    /// The longest --duration: a year, so that the deadline in nanoseconds fits 64 bits.
    public static let longest: Double = 365 * 86_400

    /// nil if `duration` is usable (or not given), else the one-line problem; `until` says what
    /// runs without it ("capture", "forward").
    public static func problem(_ duration: Double?, until: String) -> String? {
        guard let duration, !(duration > 0 && duration <= longest) else { return nil }
        return "--duration \(shown(duration)) is out of range: give a positive number of seconds up to \(Int(longest)) (a year), or leave --duration out to \(until) until stopped"
    }

    /// The monotonic deadline in nanoseconds for a checked `duration` from `start`.
    public static func deadline(_ duration: Double?, from start: UInt64) -> UInt64? {
        duration.map { start + UInt64($0 * 1e9) }
    }
}

/// A number as a person typed it: whole numbers without a fraction, others as Swift prints them
/// (inf, nan, 1e-12).
public func shown(_ value: Double) -> String {
    value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
