import ArgumentParser
import Synchronization
import CWirecapLinux
import Foundation
import WirecapEngine
import WirecapForward
import WirecapIDS
import WirecapLinux
import WirecapSavefile

/// `wirecap-fwd` and `wirecap fwd`: a thin layer over `Forwarder`, with capture's ring, pool and
/// offload options under the same names.
public struct ForwardCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fwd",
        abstract: "Forward frames from one interface to another through N queues, losing none (a middlebox).",
        discussion: """
            Captures on IN as `wirecap capture` does (fanout queues, the chunk pool, optional buddy \
            offloading) and sends every frame on OUT through one TX ring per queue. Prints \
            `forwarding IN -> OUT: N queues` on standard error once every ring is open and the \
            fanout group is complete; stops after about -c frames, after --duration, or on \
            SIGINT/SIGTERM, after forwarding everything IN already accepted; then prints a summary.

            A filter expression selects what is captured, so frames that do not match it are NOT \
            forwarded: they never reach the forwarder (`wirecap-fwd -i IN -o OUT udp port 53` \
            passes DNS only and drops everything else). To drop selected frames and pass the rest, \
            negate the expression (`not udp port 53`).

            --bidirectional also forwards OUT -> IN (a bump in the wire), each way with its own \
            fanout group, queues and threads; the filter applies both ways, and only frames \
            arriving on an interface are forwarded (never what the host or the other direction \
            sends out of it, which would loop).
            """)

    @Option(name: .short, help: "Interface to capture on (IN).")
    var i: String?

    @Option(name: .short, help: "Interface to send on (OUT).")
    var o: String?

    @Argument(
        help: """
            A filter expression in tcpdump's syntax (see `man pcap-filter`), run by the kernel on every queue: \
            frames that do not match are not captured, so they are NOT forwarded.
            """)
    var expression: [String] = []

    @Flag(help: "Forward both ways, IN -> OUT and OUT -> IN (a bump in the wire): two forwarders, each with --queues queues.")
    var bidirectional = false

    @Option(help: ArgumentHelp("A copy of every forwarded frame, as sent: out of interface IFACE too (a monitor port; a copy the tap cannot take at once is dropped and counted, never holding forwarding up), or into savefile PATH (a name with a '/' or ending in .pcap or .pcapng; pcapng by its name).", valueName: "IFACE|PATH"))
    var tap: String?

    /// Whether `--tap` names a savefile rather than an interface.
    var tapIsFile: Bool {
        guard let tap else { return false }
        return tap.contains("/") || tap.hasSuffix(".pcap") || tap.hasSuffix(".pcapng")
    }

    @Flag(help: "Send through OUT's qdisc, so tc (shaping, priorities) applies; by default frames bypass it, which is faster.")
    var keepQdisc = false

    @Option(help: "Number of queues: fanout member sockets on IN, TX rings on OUT, one forwarding thread each.")
    var queues: Int = 1

    @Option(help: "How frames are spread over queues: hash (keeps each flow on one queue, so in order), cpu, qm or lb.")
    var fanout: FanoutMode = .hash

    @Option(help: "Bytes per ring block (a multiple of the page size).")
    var blockSize: Int = RingGeometry.default.blockSize

    @Option(help: "Blocks per ring.")
    var blocks: Int = RingGeometry.default.blockCount

    @Option(help: "Milliseconds before the kernel hands over a block that is not full: the latency a quiet link adds.")
    var blockTimeout: Int = 2

    @Option(name: .short, help: "Snap length: longer frames are counted as too big and not sent (never sent truncated).")
    var s: Int = CaptureConfiguration.defaultSnapLength

    @Option(help: "Ring-buffer pool: chunks per queue, each one ring block (forwarding needs at least 1).")
    var poolChunks: Int = 32

    @Option(help: "Lock pool memory: auto (warn if the limit forbids), required (fail instead), off.")
    var lockPool: MemoryLockPolicy = .auto

    @Flag(help: "Copy every RX block into a pool chunk before it is forwarded, instead of forwarding from the ring block in place while the backlog is short (one copy RX to TX, the default).")
    var poolCopyAll = false

    @Option(help: "Buddy offloading threshold T in 0...1 (off unless given): a busy queue's chunks are forwarded by a buddy, on the buddy's TX ring.")
    var offloadThreshold: Double?

    @Option(help: "Drop frames that contain this signature (text, or hex:DEADBEEF), as an IPS; repeat for several.")
    var dropSignature: [String] = []

    @Option(help: "Frames in each queue's TX ring.")
    var txFrames: Int = 4096

    // Not exact: the count is read every 100 ms, and what was received by then is still forwarded.
    // An exact stop would have to end a forwarding walk part way through a chunk, inside
    // WirecapForward.
    @Option(
        name: .short,
        help: "Stop after about this many frames received (both ways together with --bidirectional): the count is checked every 100 ms and every frame received by the stop is still forwarded, so a few more may go through.")
    var c: Int?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "Write statistics as one JSON object to this file, or - for standard output.")
    var statsJson: String?

    @Option(help: "Every this many seconds, a line per direction on standard error: per queue packets/s received, capture drops, backlog, offloaded chunks, frames forwarded; totals. With --stats-json also the statistics so far, one JSON object a line, the last at the stop.")
    var statsInterval: Double?

    @Option(help: "Serve the statistics at http://ADDRESS:PORT/metrics in the Prometheus text format, per direction and queue; a port alone listens on 127.0.0.1.")
    var metrics: String?

    @Option(name: .customShort("Z"), help: "Once every ring is open, switch to this user (its groups too), as tcpdump -Z. Without -Z every capability is dropped instead (CAP_NET_RAW, CAP_NET_ADMIN and CAP_IPC_LOCK kept with --reconnect, which opens sockets again). A --tap file is opened before.")
    var user: String?

    @Flag(help: "Do not pin threads to CPUs.")
    var noPin = false

    @Flag(help: "Run the capture and forwarding threads real-time (SCHED_FIFO), so a wake-up for a full block does not wait for a busy core: lower tail latency (needs root or CAP_SYS_NICE).")
    var priorityHigh = false

    @Flag(help: "When a link goes down (or an interface goes away), wait for every interface to come back and forward on; the summary counts reconnects and the time without forwarding.")
    var reconnect = false

    public init() {}

    /// The name the errors start with: `wirecap-fwd`, or `wirecap` when run as `wirecap fwd`.
    static var program: String { URL(fileURLWithPath: CommandLine.arguments.first ?? "wirecap-fwd").lastPathComponent }

    func refuse(_ message: String) -> ExitCode {
        printError("\(Self.program): \(message)")
        return ExitCode.failure
    }

    /// Checked in `run`, not `validate`, so that the error is one line like every other one.
    func optionProblem() -> String? {
        if i == nil || o == nil { return "nothing to forward: give the input interface with -i and the output with -o" }
        if let c, c < 1 { return "-c \(c) is out of range: give a frame count of 1 or more" }
        if let problem = DurationOption.problem(duration, until: "forward") { return problem }
        if let statsInterval, !(statsInterval >= 0.1 && statsInterval <= DurationOption.longest) {
            return "--stats-interval \(statsInterval) is out of range: give 0.1 to \(Int(DurationOption.longest)) seconds"
        }
        if let metrics, MetricsEndpoint.parse(metrics) == nil {
            return "--metrics \(metrics) is not PORT or IPV4:PORT (e.g. 9100, or 0.0.0.0:9100 to be scraped from other machines)"
        }
        if user != nil && reconnect {
            return "-Z and --reconnect cannot be combined: as \(user!) wirecap-fwd could not open the sockets again; drop -Z (capabilities are dropped anyway, CAP_NET_RAW kept) or --reconnect"
        }
        if poolChunks < 1 { return "--pool-chunks \(poolChunks) is out of range: forwarding needs the pool, give 1 or more" }
        if txFrames < 1 { return "--tx-frames \(txFrames) is out of range: give 1 or more" }
        // Each forwarder opens the file anew: a second one (the other direction, or the one a
        // reconnect opens) would start it over.
        if tapIsFile && (bidirectional || reconnect) {
            return "--tap \(tap!) is a file, which one forwarder writes: leave out \(bidirectional ? "--bidirectional" : "--reconnect"), or tap to an interface"
        }
        return nil
    }

    /// Everything `run` checks before it opens anything: the options, the signatures, and each
    /// direction's configuration with its filter. `openingNothing` compiles the filter as for a
    /// file instead of on the input device (which opens a socket): what the fuzz target of the
    /// options calls.
    func checked(openingNothing: Bool = false) throws -> (signatures: [Signature], configurations: [ForwarderConfiguration]) {
        if let problem = optionProblem() { throw refuse(problem) }
        let (input, output) = (i!, o!)
        let signatures: [Signature]
        do {
            signatures = try dropSignature.map(Signature.init(parsing:))
        } catch let error as Signature.Invalid {
            throw refuse("--drop-signature \(error.text) is not text or hex:HEXDIGITS (e.g. hex:deadbeef)")
        }
        let configurations = try (bidirectional ? [(input, output), (output, input)] : [(input, output)]).map { from, to in
            try configuration(from, to, openingNothing: openingNothing)
        }
        return (signatures, configurations)
    }

    public func run() throws {
        let (signatures, configurations) = try checked()
        let (input, output) = (i!, o!)
        // Signals are taken by this thread with sigtimedwait; every other thread inherits the mask
        // (and, with --priority-high, the real-time policy).
        _ = CWirecapLinux_block_stop_signals()
        if priorityHigh, let code = RealtimePriority.apply() { throw refuse(RealtimePriority.problem(code)) }
        let interfaces = [input, output] + (tap.map { tapIsFile ? [] : [$0] } ?? [])
        var link = LinkRun(reconnect: reconnect, interfaces: interfaces, program: Self.program, activity: "forwarding")
        // Per direction: the counts of forwarders already stopped, added up, and the last one's
        // output failure.
        var retired: [ForwardStatistics?] = configurations.map { _ in nil }
        var failures: [CaptureError?] = configurations.map { _ in nil }
        var tapFileFailures = [SavefileError?](repeating: nil, count: configurations.count)
        let ways = configurations.map { "\($0.capture.interface) -> \($0.output)" }
        var fanoutGroups: [UInt16] = configurations.map { _ in 0 }
        var intervalLines = configurations.map { _ in IntervalLine() }
        var privilegesDropped = false
        do {
            try prepareStatisticsFile(statsJson, switchingUser: user != nil)
        } catch {
            throw refuse("cannot write statistics to \(statsJson ?? "-"): \(error.localizedDescription) (choose a writable path)")
        }
        // What a scrape reads, from the server's threads: per direction the forwarders retired
        // so far and the running ones.
        let live = Mutex<(retired: [ForwardStatistics?], running: [Forwarder])>((configurations.map { _ in nil }, []))
        var endpoint: MetricsEndpoint? = nil
        if let metrics, let (host, port) = MetricsEndpoint.parse(metrics) {
            MetricsEndpoint.bootstrap()
            let names = configurations.map { ($0.capture.interface, "\($0.capture.interface)->\($0.output)") }
            do {
                endpoint = try MetricsEndpoint(host: host, port: port) {
                    let (retired, running) = live.withLock { ($0.retired, $0.running) }
                    return names.indices.compactMap { index in
                        let current = index < running.count ? running[index].statistics() : nil
                        guard let s = current.map({ retired[index] + $0 }) ?? retired[index] else { return nil }
                        return MetricsSample(
                            interface: names[index].0, direction: names[index].1, queues: s.queues.map(\.capture),
                            forwarded: s.queues.map(\.forwarded), transmitErrors: s.queues.map(\.txErrors))
                    }
                }
            } catch {
                throw refuse(error.description)
            }
        }
        defer { withExtendedLifetime(endpoint) {} }
        var schedule = statsInterval.map(IntervalSchedule.init(seconds:))
        let end: LinkRun.End
        do {
            end = try link.run(
                duration: duration,
                open: { note in
                    let forwarders = try open(configurations, signatures: signatures, droppingPrivileges: !privilegesDropped)
                    privilegesDropped = true
                    live.withLock { $0.running = forwarders }
                    fanoutGroups = forwarders.map(\.engine.fanoutGroup)
                    let ready = "forwarding \(ways.joined(separator: " and ")): \(queues) queues\(bidirectional ? " each" : "")\(note)"
                    printError(ready)
                    ServiceNotification.ready(status: ready)
                    return forwarders
                },
                // Without --reconnect a lost link is not looked for: the forwarder goes on when
                // the link comes back with the same interface, as it always has.
                lost: { forwarders in reconnect ? Self.loss(of: forwarders) : nil },
                finished: { forwarders in
                    guard let c else { return false }
                    let before = retired.reduce(0) { $0 + ($1?.received ?? 0) }
                    return forwarders.reduce(before) { $0 + $1.statistics().received } >= UInt64(c)
                },
                retire: { forwarders in
                    // Both directions drain at once.
                    for forwarder in forwarders { forwarder.requestStop() }
                    for forwarder in forwarders { forwarder.wait() }
                    for (index, forwarder) in forwarders.enumerated() {
                        retired[index] = retired[index] + forwarder.statistics()
                        failures[index] = forwarder.outputFailure
                        tapFileFailures[index] = forwarder.tapFileFailure
                    }
                    live.withLock { $0 = (retired, []) }
                },
                // -c is looked at on every turn: ten a second then, as the help says.
                turnEvery: [c.map { _ in 0.1 }, statsInterval].compactMap { $0 }.min(),
                turn: { forwarders, now, run in
                    guard let forwarders, schedule?.isDue(now: now) == true else { return }
                    var directions: [ForwardReport.Direction] = []
                    for (index, forwarder) in forwarders.enumerated() {
                        let stats = retired[index] + forwarder.statistics()
                        let lead = bidirectional ? "\(ways[index]): " : ""
                        printError(lead + intervalLines[index].line(stats.queues.map(\.capture), now: now, since: run.started) { q in " fwd \(stats.queues[q].forwarded)" })
                        directions.append(
                            ForwardReport.Direction(
                                input: configurations[index].capture.interface, output: configurations[index].output,
                                fanoutGroup: fanoutGroups[index], statistics: stats))
                    }
                    // A failed write is told once, at the end, by the final report.
                    if let statsJson {
                        try? ForwardReport(
                            forward: directions[0], reverse: directions.dropFirst().first, seconds: Double(now - run.started) / 1e9,
                            reconnects: run.reconnects, gapSeconds: run.gapSeconds
                        ).write(to: statsJson, appending: true)
                    }
                })
        } catch let error as ForwardError {
            throw refuse(error.description(naming: \.flag))
        } catch let error as CaptureError {
            throw refuse(error.description(naming: \.flag))
        }
        let seconds = Double(CWirecapLinux_monotonic_ns() - link.started) / 1e9
        var directions: [ForwardReport.Direction] = []
        for (index, configuration) in configurations.enumerated() {
            // Every forwarder was retired at the end of the run.
            let stats = retired[index]!
            report(stats, way: ways[index], failure: failures[index], tapFileFailure: tapFileFailures[index])
            directions.append(
                ForwardReport.Direction(input: configuration.capture.interface, output: configuration.output, fanoutGroup: fanoutGroups[index], statistics: stats))
        }
        if reconnect { printError(link.summary) }
        if let statsJson {
            do {
                try ForwardReport(
                    forward: directions[0], reverse: directions.dropFirst().first, seconds: seconds, reconnects: link.reconnects, gapSeconds: link.gapSeconds
                ).write(to: statsJson, appending: statsInterval != nil)
            } catch {
                throw refuse("cannot write statistics to \(statsJson): \(error.localizedDescription) (choose a writable path)")
            }
        }
        // Only --reconnect looks for a lost link, so only it can end this way.
        if case .reopenFailed(let reason) = end {
            throw refuse("forwarding stopped: the links came back but forwarding could not open again: \(reason)")
        }
    }

    /// Opens and starts a forwarder per direction. Each is a Forwarder of its own: its own
    /// fanout group on its input (the engine asks the kernel for an unused group id), rings and
    /// threads. If the second cannot open, the first closes as it goes out of scope.
    func open(_ configurations: [ForwarderConfiguration], signatures: [Signature], droppingPrivileges: Bool) throws -> [Forwarder] {
        var forwarders: [Forwarder] = []
        for configuration in configurations { forwarders.append(try Forwarder(configuration: configuration)) }
        // Every ring is open: give up what is no longer needed before any thread starts (they
        // inherit the capabilities).
        if droppingPrivileges {
            do throws(Privileges.Failure) {
                try Privileges.giveUp(switchingTo: user, reopening: reconnect)
            } catch {
                throw refuse(error.description)
            }
        }
        for forwarder in forwarders {
            if signatures.isEmpty {
                try forwarder.start { _ in ForwardAll() }
            } else {
                try forwarder.start { _ in SignatureDropper(signatures: signatures) }
            }
        }
        return forwarders
    }

    /// A lost link (--reconnect): an input's sockets were told the interface went down or away,
    /// or an output failed.
    static func loss(of forwarders: [Forwarder]) -> String? {
        for forwarder in forwarders {
            let input = forwarder.configuration.capture.interface
            if let (queue, error) = forwarder.engine.socketError {
                return error == .networkDown
                    ? "forwarding from \(input) lost its link (the interface went down)"
                    : "forwarding from \(input) failed: the kernel reported \(error) on queue \(queue)"
            }
            if let failure = forwarder.outputFailure { return "forwarding from \(input) lost its output: \(failure)" }
        }
        return nil
    }

    /// The forwarder of one direction, `from` -> `to`, with the command's options; its filter
    /// compiled for `from` (as for a file with `openingNothing`, see `checked`).
    func configuration(_ from: String, _ to: String, openingNothing: Bool = false) throws -> ForwarderConfiguration {
        var capture = CaptureConfiguration(
            interface: from, queues: queues, fanout: fanout,
            ring: RingGeometry(blockSize: blockSize, blockCount: blocks, blockTimeoutMilliseconds: blockTimeout),
            snapLength: s, pinThreads: !noPin,
            pool: PoolConfiguration(chunks: poolChunks, lockMemory: lockPool, zeroCopy: !poolCopyAll),
            offload: offloadThreshold.map { OffloadConfiguration(threshold: $0) })
        // The sizes first: libpcap takes the snap length as a C int.
        do { try capture.validate() } catch { throw refuse(error.description(naming: \.flag)) }
        do {
            // Both ways, a frame sent out of an interface (by the other direction with the qdisc
            // kept, or by the host) is seen by that interface's capture too: only what arrives is
            // forwarded, or frames would go round in a loop.
            capture.filter = try FilterExpression(expression).kernelProgram(device: openingNothing ? nil : from, snapLength: s, direction: bidirectional ? .in : .inout)
        } catch {
            throw refuse("\(error)")
        }
        var configuration = ForwarderConfiguration(capture: capture, output: to, transmitFrames: txFrames)
        configuration.bypassQdisc = !keepQdisc
        if tapIsFile { configuration.tapFile = tap } else { configuration.tap = tap }
        return configuration
    }

    /// The summary of one direction (`way`: IN -> OUT), each line led by the direction when
    /// there are two; `failure`: its output's, if any.
    func report(_ stats: ForwardStatistics, way: String, failure: CaptureError?, tapFileFailure: SavefileError?) {
        let lead = bidirectional ? "\(way): " : ""
        printError(
            "\(lead)\(stats.forwarded) frames forwarded, \(stats.received) received, \(stats.verdictDrops) dropped by verdict, \(stats.tooBig) too big, \(stats.txErrors) TX errors, \(stats.captureDrops) capture drops, \(stats.txRingFullWaits) TX ring full waits")
        if queues > 1 {
            for q in stats.queues {
                printError(
                    "\(lead)queue \(q.queue): \(q.received) received, \(q.forwarded) forwarded, \(q.tooBig) too big, \(q.txErrors) TX errors, \(q.captureDrops) capture drops, \(q.txRingFullWaits) TX ring full waits, chunks offloaded out \(q.capture.offloadedOut) / in \(q.capture.offloadedIn), pool copy rate \(String(format: "%.1f", 100 * q.capture.copyRate)) %")
            }
        }
        if let tap, tapIsFile {
            printError("\(lead)\(stats.tapCopies) copies written to the tap file \(tap)")
            if let failure = tapFileFailure { printError("\(Self.program): \(lead)cannot finish the tap file \(failure)") }
        } else if let tap {
            printError("\(lead)\(stats.tapCopies) copies sent to the tap \(tap), \(stats.tapDrops) copies the tap could not take")
        }
        if stats.chunksParked > 0 { printError("\(lead)\(stats.chunksParked) chunks decided by a buddy waited for their turn, to leave in order") }
        if let failure { printError("\(Self.program): \(lead)\(failure)") }
        if !stats.isConserved || stats.inFlight > 0 {
            printError("\(Self.program): \(lead)the counts do not add up (\(stats.inFlight) frames in flight after the drain): please report this")
        }
    }
}
