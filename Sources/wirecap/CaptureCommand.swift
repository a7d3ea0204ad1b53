import ArgumentParser
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

    @Flag(name: .short, help: "Do not put the interface into promiscuous mode.")
    var p = false

    @Flag(help: "Do not pin capture threads to CPUs.")
    var noPin = false

    @Option(help: "Ring-buffer pool: chunks per queue, each one ring block (0: no pool, the handler runs on the ring).")
    var poolChunks: Int = 0

    @Option(help: "Lock pool memory: auto (warn if the limit forbids), required (fail instead), off.")
    var lockPool: MemoryLockPolicy = .auto

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
            pool: poolChunks > 0 ? PoolConfiguration(chunks: poolChunks, lockMemory: lockPool, stopWaitMilliseconds: stopWait) : nil,
            offload: offloadThreshold.map { OffloadConfiguration(threshold: $0, groups: buddyGroups.flatMap(Self.parseGroups)) })
        configuration.filter = filter
        // Signals are taken by this thread with sigtimedwait; capture threads inherit the mask.
        _ = CWirecapLinux_block_stop_signals()
        let engine: CaptureEngine
        let writer: SavefileWriter?
        do {
            try configuration.validate()
            writer = try w.map { path throws(SavefileError) in try SavefileWriter(path: path, snapLength: s) }
            engine = try CaptureEngine(configuration: configuration)
        } catch let error as CaptureError {
            throw fail(error)
        } catch let error as SavefileError {
            throw fail(Self.cannotOpen(error))
        }
        let sink = CaptureSink(writer: writer, limit: c, control: engine.control)
        let work = SyntheticWork(nanosecondsPerPacket: workNs, mode: workMode)
        try engine.start { _ in WorkingHandler(SinkHandler(sink: sink), work: work) }
        printError("listening on \(i): \(queues) queues")

        let started = CWirecapLinux_monotonic_ns()
        let deadline = DurationOption.deadline(duration, from: started)
        let showProgress = isatty(STDERR_FILENO) == 1
        var lastProgress = started
        var socketError: (queue: Int, error: Errno)? = nil
        while !engine.control.isStopping {
            if CWirecapLinux_wait_stop_signal(100) != 0 { break }
            let now = CWirecapLinux_monotonic_ns()
            if let deadline, now >= deadline { break }
            // The interface went down (or another error reached a queue's socket): stop with what
            // was captured so far, and say so, as tcpdump does.
            if let error = engine.socketError {
                socketError = error
                break
            }
            if showProgress && now - lastProgress >= 1_000_000_000 {
                lastProgress = now
                let stats = engine.statistics()
                FileHandle.standardError.write(Data("\r\(stats.processed) processed, \(stats.captureDrops) dropped   ".utf8))
            }
        }
        if showProgress { FileHandle.standardError.write(Data("\r".utf8)) }
        engine.stop()
        let seconds = Double(CWirecapLinux_monotonic_ns() - started) / 1e9
        do {
            try writer?.close()
        } catch {
            throw fail("cannot finish \(error)")
        }
        let statistics = engine.statistics()
        let captured = sink.packetsCaptured
        printError("\(captured) packets captured")
        printError("\(statistics.offered) packets received by filter")
        printError("\(statistics.captureDrops) packets dropped by kernel")
        if statistics.deliveryDrops > 0 { printError("\(statistics.deliveryDrops) packets dropped on delivery") }
        if statistics.inFlight > 0 {
            printError("\(statistics.inFlight) packets accepted by the kernel but not processed at stop")
        }
        if queues > 1 || poolChunks > 0 {
            for q in statistics.queues {
                var line = "queue \(q.queue): \(q.received) received, \(q.processed) processed, \(q.captureDrops) capture drops, \(q.freezes) freezes"
                if poolChunks > 0 {
                    line += ", \(q.deliveryDrops) delivery drops, pool free min \(q.poolFreeMinimum)/\(q.poolChunks)"
                }
                if offloadThreshold != nil { line += ", chunks offloaded out \(q.offloadedOut) / in \(q.offloadedIn)" }
                if rollover { line += ", rolled over \(q.rolledOver), rollover failed \(q.rolloverFailed)" }
                printError(line)
            }
        }
        if let statsJson {
            do {
                try StatisticsReport(interface: i, statistics: statistics, captured: captured, seconds: seconds).write(to: statsJson)
            } catch {
                throw fail("cannot write statistics to \(statsJson): \(error.localizedDescription) (choose a writable path)")
            }
        }
        if let (queue, error) = socketError {
            if error == .networkDown {
                throw fail("capture on \(i) stopped: the interface went down (bring it up with `ip link set \(i) up` and capture again)")
            }
            throw fail("capture on \(i) stopped: the kernel reported \(error) on queue \(queue)")
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
