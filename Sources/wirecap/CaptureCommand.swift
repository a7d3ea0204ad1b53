import ArgumentParser
import Synchronization
import CWirecapLinux
import Foundation
import WirecapCommandLine
import WirecapEngine
import WirecapLinux
import WirecapPcap
import WirecapSavefile

struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture from an interface through N fanout queues, like tcpdump.",
        discussion: """
            Prints `listening on IFACE: N queues` on standard error once every ring is open and the \
            fanout group is complete; stops at -c packets, after --duration, or on SIGINT/SIGTERM, \
            after handing over what the kernel already accepted; then prints a summary.
            """)

    @Option(name: .short, help: "Interface to capture on.")
    var i: String?

    @Option(name: .short, help: "Read packets from this pcap or pcapng file instead of an interface.")
    var r: String?

    @Argument(help: "A filter expression in tcpdump's syntax (see `man pcap-filter`); on an interface the kernel applies it on every queue.")
    var expression: [String] = []

    @Option(
        name: .customShort("Q"),
        help: ArgumentHelp("Direction to capture, as tcpdump's -Q (the kernel tests it on every queue).", valueName: "in|out|inout"))
    var direction: PcapDirection = .inout

    @Option(help: "Number of queues (fanout member sockets, one capture thread each).")
    var queues: Int = 1

    @Option(help: "How packets are spread over queues: hash, cpu, qm or lb.")
    var fanout: FanoutMode = .hash

    @Flag(help: "Let the kernel spill packets to another queue when a ring is full.")
    var rollover = false

    @Option(help: "Bytes per ring block (a multiple of the page size).")
    var blockSize: Int = RingGeometry.default.blockSize

    @Option(help: "Blocks per ring.")
    var blocks: Int = RingGeometry.default.blockCount

    @Option(help: "Milliseconds before the kernel hands over a block that is not full (0: kernel default).")
    var blockTimeout: Int = RingGeometry.default.blockTimeoutMilliseconds

    @Option(name: .short, help: "Snap length: bytes kept of each packet.")
    var s: Int = CaptureConfiguration.defaultSnapLength

    @Option(name: .short, help: "Stop after this many packets.")
    var c: Int?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(name: .short, help: "Write packets to this file: pcapng if its name ends in .pcapng, else pcap; nanosecond timestamps; - for pcap on standard output.")
    var w: String?

    @Option(help: "Write statistics as one JSON object to this file, or - for standard output.")
    var statsJson: String?

    @Option(help: "Every this many seconds, a line on standard error: per queue packets/s, capture drops, backlog, offloaded chunks; totals. With --stats-json also the statistics so far, one JSON object a line, the last at the stop.")
    var statsInterval: Double?

    @Flag(help: "When the link goes down (or the interface goes away), wait for it to come back and capture on, to the same -w file; the summary counts reconnects and the time without capture.")
    var reconnect = false

    @Option(help: "Serve the statistics at http://ADDRESS:PORT/metrics in the Prometheus text format, per queue; a port alone listens on 127.0.0.1.")
    var metrics: String?

    @Option(name: .customShort("Z"), help: "Once every ring is open and the group complete, switch to this user (its groups too), as tcpdump -Z; -w is opened after, as that user. Without -Z every capability is dropped instead (CAP_NET_RAW, CAP_NET_ADMIN and CAP_IPC_LOCK kept with --reconnect, which opens sockets and pools again).")
    var user: String?

    @Flag(name: .short, help: "Do not put the interface into promiscuous mode.")
    var p = false

    @Flag(help: "Do not pin capture threads to CPUs.")
    var noPin = false

    @Option(help: "Ring-buffer pool: chunks per queue, each one ring block (0: no pool, the handler runs on the ring).")
    var poolChunks: Int = 0

    @Option(help: "Lock pool memory: auto (warn if the limit forbids), required (fail instead), off.")
    var lockPool: MemoryLockPolicy = .auto

    @Flag(help: "Pool mode: copy every ring block into a chunk, instead of lending blocks to the handler in place while its backlog is short (the hybrid pool, default).")
    var poolCopyAll = false

    @Option(help: "Pool mode: milliseconds a stop waits, at most, for handlers to free a chunk while accepted packets are still in the ring (what is left after it is reported).")
    var stopWait: Int = 10_000

    @Option(help: "Buddy offloading threshold T in 0...1: a queue whose backlog exceeds T x --pool-chunks hands new chunks to idle buddies (off unless given).")
    var offloadThreshold: Double?

    @Option(help: "Buddy groups, e.g. 0,1:2,3 (default: one group per NUMA node).")
    var buddyGroups: String?

    @Option(help: "Synthetic processing load: nanoseconds of work per packet in the handler.")
    var workNs: Int = 0

    @Option(help: "How the load is spent: spin (burns CPU) or sleep (n x work-ns per batch, no CPU).")
    var workMode: SyntheticWork.Mode = .spin

    /// Checked in `run`, not `validate`, so that the error is one line like every other one.
    func optionProblem() -> String? {
        if i == nil && r == nil { return "nothing to capture from: give an interface with -i or a file with -r" }
        if i != nil && r != nil { return "-i and -r cannot be combined: capture from an interface or read a file" }
        if r != nil && direction != .inout { return "-Q \(direction) needs an interface: a file records no direction; drop -Q or capture with -i" }
        if let c, c < 1 { return "-c \(c) is out of range: give a packet count of 1 or more" }
        if let problem = DurationOption.problem(duration, until: "capture") { return problem }
        if user != nil && r != nil { return "-Z needs an interface: reading a file needs no privilege to give up; drop -Z" }
        if user != nil && reconnect {
            return "-Z and --reconnect cannot be combined: as \(user!) wirecap could not open the sockets again; drop -Z (capabilities are dropped anyway, CAP_NET_RAW kept) or --reconnect"
        }
        if let metrics, MetricsEndpoint.parse(metrics) == nil {
            return "--metrics \(metrics) is not PORT or IPV4:PORT (e.g. 9100, or 0.0.0.0:9100 to be scraped from other machines)"
        }
        if metrics != nil && r != nil { return "--metrics needs an interface: drop it when reading a file" }
        if let statsInterval {
            if !(statsInterval >= 0.1 && statsInterval <= DurationOption.longest) {
                return "--stats-interval \(shown(statsInterval)) is out of range: give 0.1 to \(Int(DurationOption.longest)) seconds"
            }
        }
        if reconnect && r != nil { return "--reconnect needs an interface: a file has no link to lose; drop --reconnect or capture with -i" }
        // Checked before the filter is compiled, which hands the snap length to libpcap as a C int.
        if !(1...CaptureConfiguration.defaultSnapLength).contains(s) {
            return "-s \(s) is out of range: use 1 to \(CaptureConfiguration.defaultSnapLength) bytes"
        }
        if poolChunks < 0 { return "--pool-chunks \(poolChunks) is out of range: give 0 (no pool) or more" }
        if stopWait < 0 || stopWait > 86_400_000 { return "--stop-wait \(stopWait) is out of range: use 0 to 86400000 ms" }
        if workNs < 0 || workNs > 1_000_000_000 { return "--work-ns \(workNs) is out of range: use 0 to 1000000000" }
        if buddyGroups != nil && offloadThreshold == nil { return "--buddy-groups needs --offload-threshold (the groups only matter when offloading is on)" }
        if let buddyGroups, Self.parseGroups(buddyGroups) == nil {
            return "--buddy-groups \(buddyGroups) is not a list of groups: write queue numbers joined by commas, groups by colons, e.g. 0,1:2,3"
        }
        return nil
    }

    static func parseGroups(_ text: String) -> [[Int]]? {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false).map { group in
            group.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
        guard groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 != nil } }) else { return nil }
        return groups.map { $0.map { $0! } }
    }

    var filterExpression: String? { FilterExpression(expression).text }

    func run() throws {
        if let problem = optionProblem() { throw fail(problem) }
        if let r { return try readFile(r) }
        let i = self.i!
        let filter: [BPFInstruction]?
        do {
            filter = try FilterExpression(expression).kernelProgram(device: i, snapLength: s, direction: direction)
        } catch {
            throw fail(error)
        }
        var configuration = CaptureConfiguration(
            interface: i, queues: queues, fanout: fanout, rollover: rollover,
            ring: RingGeometry(blockSize: blockSize, blockCount: blocks, blockTimeoutMilliseconds: blockTimeout),
            snapLength: s, promiscuous: !p, pinThreads: !noPin,
            pool: poolChunks > 0 ? PoolConfiguration(chunks: poolChunks, lockMemory: lockPool, stopWaitMilliseconds: stopWait, zeroCopy: !poolCopyAll) : nil,
            offload: offloadThreshold.map { OffloadConfiguration(threshold: $0, groups: buddyGroups.flatMap(Self.parseGroups)) })
        configuration.filter = filter
        // Signals are taken by this thread with sigtimedwait; capture threads inherit the mask.
        _ = CWirecapLinux_block_stop_signals()
        do throws(CaptureError) {
            try configuration.validate()
        } catch {
            throw fail(error)
        }
        // The savefile and the -c count outlive engines: with --reconnect one run is several.
        let makeSink = { [self] () throws -> CaptureSink in
            let writer: SavefileWriter?
            do {
                writer = try w.map { path throws(SavefileError) in try SavefileWriter(path: path, snapLength: s) }
            } catch let error as SavefileError {
                throw fail(Self.cannotOpen(error))
            }
            return CaptureSink(writer: writer, queues: queues, limit: c) {
                TimeOrderedWriter(
                    writer: $0, queues: queues, window: reorderWindow, laneBytes: max(Self.laneBytes, 4 * blockSize),
                    limit: c.map(UInt64.init), now: TimeOrderedWriter.now())
            }
        }
        // -w is opened before any socket, so that a bad path costs nothing; with -Z after the
        // switch, as the user (tcpdump's order), once the first group is open.
        var sink: CaptureSink! = user == nil ? try makeSink() : nil
        var privilegesDropped = false
        do {
            try prepareStatisticsFile(statsJson, switchingUser: user != nil)
        } catch {
            throw fail("cannot write statistics to \(statsJson ?? "-"): \(error.localizedDescription) (choose a writable path)")
        }
        // What a scrape reads, from the server's threads: the engines retired so far and the
        // running one.
        let live = Mutex<(retired: CaptureStatistics?, engine: CaptureEngine?)>((nil, nil))
        var endpoint: MetricsEndpoint? = nil
        if let metrics, let (host, port) = MetricsEndpoint.parse(metrics) {
            MetricsEndpoint.bootstrap()
            do {
                endpoint = try MetricsEndpoint(host: host, port: port) { [i] in
                    let (retired, engine) = live.withLock { ($0.retired, $0.engine) }
                    guard let statistics = engine.map({ retired + $0.statistics() }) ?? retired else { return [] }
                    return [MetricsSample(interface: i, queues: statistics.queues)]
                }
            } catch {
                throw fail(error.description)
            }
        }
        defer { withExtendedLifetime(endpoint) {} }
        let work = SyntheticWork(nanosecondsPerPacket: workNs, mode: workMode)
        var link = LinkRun(reconnect: reconnect, interfaces: [i], program: "wirecap", activity: "capture")
        // The counts of engines already stopped, added up.
        var retired: CaptureStatistics? = nil
        var socketError: (queue: Int, error: Errno)? = nil
        let showProgress = isatty(STDERR_FILENO) == 1
        var lastProgress: UInt64 = 0
        var schedule = statsInterval.map(IntervalSchedule.init(seconds:))
        var intervalLine = IntervalLine()
        var started: UInt64 = 0
        let end: LinkRun.End
        do {
            end = try link.run(
                duration: duration,
                open: { note in
                    let engine = try CaptureEngine(configuration: configuration)
                    // Every ring is open and the group complete: give up what is no longer
                    // needed before any capture thread starts (they inherit the capabilities).
                    if !privilegesDropped {
                        do throws(Privileges.Failure) {
                            try Privileges.giveUp(switchingTo: user, reopening: reconnect)
                        } catch {
                            throw fail(error.description)
                        }
                        privilegesDropped = true
                    }
                    if sink == nil { sink = try makeSink() }
                    let control = engine.control
                    let current: CaptureSink = sink
                    if let ordered = current.ordered {
                        try Self.start(engine, work: work) { WritingSinkHandler(ordered: ordered, queue: $0, control: control) }
                    } else if current.direct != nil {
                        try Self.start(engine, work: work) { _ in DirectSinkHandler(sink: current, control: control) }
                    } else {
                        try Self.start(engine, work: work) { _ in CountingSinkHandler(sink: current, control: control) }
                    }
                    printError("listening on \(i): \(queues) queues\(note)")
                    ServiceNotification.ready(status: "listening on \(i): \(queues) queues\(note)")
                    if started == 0 { started = CWirecapLinux_monotonic_ns() }
                    live.withLock { $0.engine = engine }
                    return engine
                },
                // The interface went down (or another error reached a queue's socket).
                lost: { engine in
                    guard let error = engine.socketError else { return nil }
                    socketError = error
                    return error.error == .networkDown
                        ? "capture on \(i) lost its link (the interface went down)"
                        : "capture on \(i) failed: the kernel reported \(error.error) on queue \(error.queue)"
                },
                finished: { $0.control.isStopping || sink.limitReached },
                retire: { engine in
                    engine.stop()
                    retired = retired + engine.statistics()
                    live.withLock { $0 = (retired, nil) }
                },
                wakeDescriptor: { $0.stopDescriptor },
                // -w over several queues writes in time order and lets a held packet go once the
                // reorder window has passed on a turn (`sink.expire()`): turns of 100 ms then, as
                // before the loop slept a second at a time, so an idle queue does not hold the
                // others' packets back for a second.
                turnEvery: [statsInterval, w != nil && queues > 1 ? 0.1 : nil].compactMap { $0 }.min(),
                turn: { engine, now, run in
                    sink.expire()
                    if showProgress && now - lastProgress >= 1_000_000_000 {
                        lastProgress = now
                        let stats = total(retired, engine)
                        FileHandle.standardError.write(Data("\r\(stats.processed) processed, \(stats.captureDrops) dropped   ".utf8))
                    }
                    if schedule?.isDue(now: now) == true {
                        let stats = total(retired, engine)
                        if showProgress { FileHandle.standardError.write(Data("\r".utf8)) }
                        printError(intervalLine.line(stats.queues, now: now, since: started))
                        // A failed write is told once, at the end, by the final report.
                        try? report(stats, captured: sink.packetsCaptured, link: run, now: now)
                    }
                })
        } catch let error as CaptureError {
            throw fail(error)
        }
        if showProgress { FileHandle.standardError.write(Data("\r".utf8)) }
        do {
            try sink.finish()
        } catch {
            throw fail("cannot finish \(error)")
        }
        // Every engine was retired at the end of the run.
        let statistics = retired!
        let captured = sink.packetsCaptured
        printError("\(captured) packets captured")
        if sink.late > 0 {
            printError("\(sink.late) packets written out of time order (a queue fell more than \(reorderWindow / 1_000_000) ms behind, or held too much)")
        }
        printError("\(statistics.offered) packets received by filter")
        printError("\(statistics.captureDrops) packets dropped by kernel")
        if statistics.deliveryDrops > 0 { printError("\(statistics.deliveryDrops) packets dropped on delivery") }
        if statistics.inFlight > 0 {
            printError("\(statistics.inFlight) packets accepted by the kernel but not processed at stop")
        }
        if reconnect { printError(link.summary) }
        if queues > 1 || poolChunks > 0 {
            for q in statistics.queues {
                var line = "queue \(q.queue): \(q.received) received, \(q.processed) processed, \(q.captureDrops) capture drops, \(q.freezes) freezes"
                if poolChunks > 0 {
                    line += ", \(q.deliveryDrops) delivery drops, pool free min \(q.poolFreeMinimum)/\(q.poolChunks)"
                    line += String(format: ", copy rate %.1f %% (%llu blocks lent, %llu of them taken by the work thread itself, %llu copied", 100 * q.copyRate, q.blocksLent, q.blocksServedByWorkThread, q.blocksCopied + q.blocksCopiedLater)
                    line += q.heldBlockReached > 0 ? ", a lent block reached \(q.heldBlockReached) times)" : ")"
                }
                if offloadThreshold != nil { line += ", chunks offloaded out \(q.offloadedOut) / in \(q.offloadedIn)" }
                if rollover { line += ", rolled over \(q.rolledOver), rollover failed \(q.rolloverFailed)" }
                printError(line)
            }
        }
        do {
            try report(statistics, captured: captured, link: link, now: CWirecapLinux_monotonic_ns())
        } catch {
            throw fail("cannot write statistics to \(statsJson ?? "-"): \(error.localizedDescription) (choose a writable path)")
        }
        switch end {
        case .stopped:
            break
        case .linkLost:
            let (queue, error) = socketError!
            if error == .networkDown {
                throw fail("capture on \(i) stopped: the interface went down (bring it up with `ip link set \(i) up` and capture again)")
            }
            throw fail("capture on \(i) stopped: the kernel reported \(error) on queue \(queue)")
        case .reopenFailed(let reason):
            throw fail("capture on \(i) stopped: its link came back but capture could not open again: \(reason)")
        }
    }

    /// With -w from several queues, how long a quiet queue holds the others' packets back: more
    /// than it may take to deliver a packet, the block timeout (8 ms when the kernel picks) and
    /// the work on a block.
    var reorderWindow: UInt64 { UInt64(max(500, 2 * blockTimeout + 100)) * 1_000_000 }

    /// With -w, the least a queue may hold for the time order (a lane holds four blocks or more).
    static let laneBytes = 8 << 20

    /// The counts so far: the engines retired and the one running, if any.
    func total(_ retired: CaptureStatistics?, _ running: CaptureEngine?) -> CaptureStatistics {
        // No engine runs only while waiting for the link, after one was retired.
        guard let running else { return retired! }
        return retired + running.statistics()
    }

    /// The --stats-json object, if asked for: with --stats-interval one line more each time (the
    /// file was emptied at the start), else the file.
    func report(_ statistics: CaptureStatistics, captured: UInt64, link: LinkRun, now: UInt64) throws {
        guard let statsJson else { return }
        try StatisticsReport(
            interface: i!, statistics: statistics, captured: captured, seconds: Double(now - link.started) / 1e9,
            reconnects: link.reconnects, gapSeconds: link.gapSeconds
        ).write(to: statsJson, appending: statsInterval != nil)
    }

    /// Starts the engine with the sink's handler, wrapped in the synthetic work only when there
    /// is work: with the wrapper the walk was not specialised even with nothing to do (witness
    /// calls and a metadata lookup per packet; callgrind, scripts/cpu-vs-c-reference.sh: 84.5
    /// instructions per packet on the plain ring with it, 32.4 without).
    static func start<H: PacketHandler>(_ engine: CaptureEngine, work: SyntheticWork, _ make: @escaping @Sendable (Int) -> H) throws(CaptureError) {
        if work.nanosecondsPerPacket > 0 {
            try engine.start { WorkingHandler(make($0), work: work) }
        } else {
            try engine.start(make)
        }
    }

    /// An output file that cannot be opened: the fix is another `-w`.
    static func cannotOpen(_ error: SavefileError) -> String {
        "cannot write \(error.path): \(error.reason) (choose a writable path with -w)"
    }

    /// `-r FILE`: read a pcap or pcapng file through the facade (libpcap underneath), filter it
    /// in user space with libpcap's filter, and write or count what passes, as tcpdump -r does.
    func readFile(_ path: String) throws {
        do {
            let handle = try PcapHandle.openOffline(path: path, precision: .nano)
            defer { handle.close() }
            if let filterExpression {
                do {
                    try handle.setFilter(filterExpression)
                } catch {
                    throw fail(FilterExpression.Refusal(expression: filterExpression, reason: error))
                }
            }
            let linkType = try handle.datalink
            let snapLength = try handle.snapshot
            printError("reading from file \(path), link-type \(linkType), snapshot length \(snapLength)")
            // The file's link type and snap length, at nanosecond precision: nothing is lost.
            let writer: SavefileWriter?
            do {
                writer = try w.map { output throws(SavefileError) in try SavefileWriter(path: output, linkType: linkType, snapLength: snapLength) }
            } catch {
                throw fail(Self.cannotOpen(error))
            }
            var written = 0
            _ = try handle.loop(count: c ?? -1) { packet in
                writer?.write(packet)
                written += 1
            }
            do {
                try writer?.close()
            } catch {
                throw fail("cannot finish \(error)")
            }
            printError("\(written) packets")
            if let statsJson {
                let object = "{\"file\":\"\(path)\",\"total\":{\"captured\":\(written)}}\n"
                if statsJson == "-" { print(object, terminator: "") } else { try object.write(toFile: statsJson, atomically: true, encoding: .utf8) }
            }
        } catch let error as PcapError {
            throw fail("cannot read \(path): \(error) (give a readable pcap or pcapng file)")
        }
    }
}

extension PcapDirection: ExpressibleByArgument {
    public init?(argument: String) {
        guard let direction = Self.allCases.first(where: { "\($0)" == argument }) else { return nil }
        self = direction
    }

    public static var allValueStrings: [String] { allCases.map { "\($0)" } }
}
