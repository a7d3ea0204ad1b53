import CWirecapLinux
import Foundation
import WirecapEngine
import WirecapForward
import WirecapLinux

/// The main loop of the tools that run until stopped (`wirecap capture`, `wirecap-fwd`), with
/// `--reconnect`: one place that waits for SIGINT/SIGTERM, `--duration` and the tool's own end
/// (-c), notices a lost link, and with `--reconnect` waits for the link and opens the tool again,
/// counting reconnects and the time without capture.
///
/// An *incarnation* is whatever the tool opens on its interfaces (a `CaptureEngine`, the
/// `Forwarder`s of each direction). The tool keeps what outlives incarnations (the savefile, the
/// -c count, statistics added up in `retire`).
public struct LinkRun {
    /// How a run ended.
    public enum End: Equatable {
        /// SIGINT/SIGTERM, --duration, or the tool's own end (-c).
        case stopped
        /// The link was lost without --reconnect: the tool's one-line description of the loss.
        case linkLost(String)
        /// With --reconnect, the link came back but the tool could not open on it again: why.
        case reopenFailed(String)
    }

    public let reconnect: Bool
    /// Every interface an incarnation needs: all must be up with a carrier before it reopens.
    public let interfaces: [String]
    /// The error lines' lead: `wirecap`, `wirecap-fwd`.
    public let program: String
    /// What stops while the link is lost, for the summary: `capture`, `forwarding`.
    public let activity: String
    /// Incarnations opened after a lost link.
    public private(set) var reconnects = 0
    /// Nanoseconds from noticing each loss until the next incarnation was ready (and, if the run
    /// stopped while waiting, until the stop).
    public private(set) var gapNanoseconds: UInt64 = 0
    /// When the link was found lost (monotonic ns), while waiting for it.
    public private(set) var lostSince: UInt64? = nil
    /// When the run started (monotonic ns): the first incarnation was ready.
    public private(set) var started: UInt64 = 0

    /// How often the loop looks at the incarnation (its link, -c) while one runs: it sleeps in
    /// the kernel in between, woken at once by a stop signal or the incarnation's stop request
    /// (`wakeDescriptor`), so an idle capture costs a wake-up a second, not ten.
    static let turnMilliseconds: Int32 = 1000
    /// How often it looks at the interfaces while waiting for a lost link to come back.
    static let linkWaitMilliseconds: Int32 = 100

    public init(reconnect: Bool, interfaces: [String], program: String, activity: String) {
        self.reconnect = reconnect
        self.interfaces = interfaces
        self.program = program
        self.activity = activity
    }

    /// The time without capture so far, the wait under way included.
    public var gapSeconds: Double {
        Double(gapNanoseconds + (lostSince.map { CWirecapLinux_monotonic_ns() - $0 } ?? 0)) / 1e9
    }

    /// The summary line, with --reconnect: `N reconnects, S s without capture`.
    public var summary: String {
        "\(reconnects) reconnect\(reconnects == 1 ? "" : "s"), \(String(format: "%.3f", gapSeconds)) s without \(activity)"
    }

    /// Runs until stopped. Stop signals must already be blocked (`CWirecapLinux_block_stop_signals`).
    ///
    /// - Parameters:
    ///   - duration: --duration (checked), counted from the first incarnation's readiness.
    ///   - open: opens, starts and announces an incarnation; `note` is "" the first time, else
    ///     what to add to the ready line (` (reconnect N after S s)`). The first call's error is
    ///     thrown out of `run`; a later one that says the link is gone again makes the run wait
    ///     on, any other ends it with `.reopenFailed` and the error's text.
    ///   - lost: a one-line description of the loss if the incarnation's link is lost, else nil.
    ///   - finished: whether the incarnation ended on its own (-c).
    ///   - retire: stops and drains an incarnation and keeps its counts; called once for each,
    ///     also for the last one when the run ends.
    ///   - turnEvery: seconds between turns if under a second (a statistics interval).
    ///   - wakeDescriptor: a descriptor that becomes readable when the incarnation asks for a
    ///     stop (the engine's, -c reached), or -1: the loop then notices it on its next turn.
    ///   - turn: called on every turn of the loop (about every second; every 100 ms while waiting
    ///     for the link), with the incarnation or nil while waiting for the link, and the run so
    ///     far: progress lines, periodic statistics.
    public mutating func run<Incarnation>(
        duration: Double?,
        open: (_ note: String) throws -> Incarnation,
        lost: (Incarnation) -> String?,
        finished: (Incarnation) -> Bool,
        retire: (Incarnation) -> Void,
        wakeDescriptor: (Incarnation) -> Int32 = { _ in -1 },
        turnEvery: Double? = nil,
        turn: (Incarnation?, _ now: UInt64, _ run: LinkRun) -> Void = { _, _, _ in }
    ) throws -> End {
        // A shorter turn when the caller needs one (--stats-interval under a second).
        let turnLength = turnEvery.map { Int32(max(10, min(Double(Self.turnMilliseconds), $0 * 1000))) } ?? Self.turnMilliseconds
        var current: Incarnation? = try open("")
        started = CWirecapLinux_monotonic_ns()
        let deadline = DurationOption.deadline(duration, from: started)
        var end = End.stopped
        while true {
            var milliseconds = current == nil ? Self.linkWaitMilliseconds : turnLength
            if let deadline {
                let left = deadline &- min(deadline, CWirecapLinux_monotonic_ns())
                milliseconds = Int32(min(UInt64(milliseconds), (left + 999_999) / 1_000_000))
            }
            let wake = current.map(wakeDescriptor) ?? -1
            if CWirecapLinux_wait_stop_signal_or_readable(wake, milliseconds) > 0 { break }
            let now = CWirecapLinux_monotonic_ns()
            if let deadline, now >= deadline { break }
            turn(current, now, self)
            if let incarnation = current {
                if finished(incarnation) { break }
                guard let loss = lost(incarnation) else { continue }
                if !reconnect {
                    end = .linkLost(loss)
                    break
                }
                printError("\(program): \(loss) at \(Self.clock()); waiting for \(interfaces.joined(separator: " and ")) to come back (--reconnect)")
                retire(incarnation)
                current = nil
                lostSince = CWirecapLinux_monotonic_ns()
            } else if let since = lostSince, interfaces.allSatisfy(Self.isLinked) {
                let gap = CWirecapLinux_monotonic_ns() - since
                do {
                    current = try open(" (reconnect \(reconnects + 1) after \(String(format: "%.3f", Double(gap) / 1e9)) s)")
                } catch {
                    // The link went again before the group was complete: wait for it again.
                    if Self.meansLinkGone(error) { continue }
                    end = .reopenFailed("\(error)")
                    break
                }
                reconnects += 1
                gapNanoseconds += CWirecapLinux_monotonic_ns() - since
                lostSince = nil
            }
        }
        // The run is over; what is left is the drain and the summary (systemd's STOPPING=1).
        ServiceNotification.stopping()
        if let current { retire(current) }
        if let since = lostSince {
            gapNanoseconds += CWirecapLinux_monotonic_ns() - since
            lostSince = nil
        }
        return end
    }

    /// Whether opening failed only because an interface is missing or down.
    static func meansLinkGone(_ error: any Error) -> Bool {
        let capture: CaptureError
        switch error {
        case let error as CaptureError: capture = error
        case ForwardError.capture(let error): capture = error
        default: return false
        }
        switch capture {
        case .noSuchInterface, .interfaceDown, .noLink: return true
        default: return false
        }
    }

    /// Up, with a carrier (a veth runs only while its peer is up): frames can arrive. A missing
    /// interface is not linked; one re-created under the same name is found by name, with its
    /// new ifindex.
    static func isLinked(_ name: String) -> Bool {
        guard let interface = try? NetworkInterface(named: name) else { return false }
        return interface.isUp && interface.isRunning
    }

    /// The wall-clock time of a loss, local, to the millisecond: to match it with the system's logs.
    static func clock() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        return formatter.string(from: Date())
    }
}
