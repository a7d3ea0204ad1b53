import ArgumentParser
import CWirecapLinux
import Foundation
import Synchronization
import WirecapEngine
import WirecapIDS
import WirecapLinux
import WirecapPcap

/// An example of the pcap facade in use: a minimal IDS that counts flows and matches byte
/// signatures in every packet, from a file or live from N queues with a reader (and a thread,
/// and an inspector) per queue, as a multi-threaded IDS runs. It also serves as a realistic
/// per-packet load.
@main
struct IDS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wirecap-ids",
        abstract: "A minimal IDS over wirecap's pcap facade: counts flows and matches byte signatures.")

    @Option(name: .short, help: "Interface to capture on.")
    var i: String?

    @Option(name: .short, help: "Read a pcap or pcapng file instead.")
    var r: String?

    @Option(help: "Queues for a live capture, each read by a thread of its own (a reader per queue).")
    var queues: Int = 1

    @Option(name: .short, help: "Snap length of a live capture: bytes kept (and inspected) of each packet. A smaller one makes smaller ring blocks, so the ring holds more of them.")
    var s: Int = 262_144

    @Option(help: "A signature to look for: text, or hex:DEADBEEF. Repeat for several.")
    var signature: [String] = []

    @Option(name: .short, help: "Stop after this many packets (all readers together).")
    var c: Int?

    @Option(name: .customShort("Z"), help: "Once the live handle is open, switch to this user (its groups too), as tcpdump -Z.")
    var user: String?

    @Option(help: "Stop a live capture after this many seconds (or at SIGINT/SIGTERM).")
    var duration: Double = 10

    @Option(help: "Extra work per packet after the inspection, in nanoseconds: a stand-in for a heavier rule set.")
    var workNs: Int = 0

    @Option(help: "How the extra work is spent: spin (burns CPU) or sleep (n x work-ns per batch, no CPU: as on a machine with a core per reader).")
    var workMode: SyntheticWork.Mode = .spin

    @Argument(help: "A filter expression in tcpdump's syntax.")
    var expression: [String] = []

    func run() throws {
        let signatures: [Signature]
        do {
            signatures = try signature.map(Signature.init(parsing:))
        } catch {
            throw fail("\(error)")
        }
        if workNs < 0 || workNs > 1_000_000_000 { throw fail("--work-ns \(workNs) is out of range: use 0 to 1000000000") }
        let work = SyntheticWork(nanosecondsPerPacket: workNs, mode: workMode)
        let filter = expression.isEmpty ? nil : expression.joined(separator: " ")
        do {
            // One handle type for both, as with pcap_t: only the open differs.
            switch (i, r) {
            case (nil, let path?):
                let handle = try PcapHandle.openOffline(path: path, precision: .nano)
                if let filter { try handle.setFilter(filter) }
                var engine = WorkingHandler(Inspector(signatures: signatures), work: work)
                _ = try handle.loop(count: c ?? -1, handler: &engine)
                handle.close()
                print(engine.inner.report())
            case (let device?, nil):
                var options = PcapHandle.LiveOptions()
                options.queues = queues
                options.snapLength = s
                options.filter = filter
                // A reader's dispatch returns after a second with nothing; a stop breaks it at
                // once (breakLoop), so the time-out only bounds an idle reader's wake-ups.
                options.timeoutMilliseconds = 1000
                // SIGINT and SIGTERM are taken by the main thread (sigtimedwait); the reading
                // threads inherit the blocked mask.
                _ = CWirecapLinux_block_stop_signals()
                let handle = try PcapHandle.openLive(device: device, options: options)
                if let user { try PcapHandle.dropPrivileges(to: user) }
                FileHandle.standardError.write(Data("wirecap-ids: listening on \(device): \(queues) queues, a reader each\n".utf8))
                let live = try Self.readQueues(of: handle, signatures: signatures, work: work, limit: c, duration: duration)
                print(live.report)
            default:
                throw fail("give an interface with -i or a file with -r (one of them)")
            }
        } catch let error as PcapError {
            // The engine's refusals, kept under the facade's text, in this command's flags.
            throw fail(error.underlying?.description(naming: Self.flag) ?? error.message)
        }
    }

    /// What the readers share: when to stop, the -c budget, the first error, the inspectors.
    final class Readers: Sendable {
        let stopping = Atomic<Bool>(false)
        /// Whether -c was given.
        let limited: Bool
        /// Packets of -c not yet inspected: each reader takes one per packet, so the readers
        /// together inspect exactly -c.
        let unclaimed: Atomic<Int>
        let finished = Atomic<Int>(0)
        /// Signalled by each reader as it finishes: the main thread sleeps on it and the signals.
        let finishedEvent: EventFD
        let error = Mutex<PcapError?>(nil)
        let inspectors: Mutex<[Int: Inspector]> = Mutex([:])

        init(limit: Int?) throws(PcapError) {
            limited = limit != nil
            unclaimed = Atomic(limit ?? Int.max)
            do throws(SystemError) { finishedEvent = try EventFD() } catch { throw PcapError(engine: .system(error)) }
        }

        /// Whether -c has been reached.
        var limitReached: Bool { limited && unclaimed.load(ordering: .relaxed) <= 0 }
    }

    /// The inspector behind the -c budget shared by every reader: a packet past it is not
    /// inspected, and ends its reader's dispatch (as -c ends pcap_loop).
    struct Limited<Inner: PacketHandler>: PacketHandler {
        var inner: Inner
        let readers: Readers
        let reader: PcapHandle

        mutating func handle(_ packet: Packet) {
            guard readers.limited, readers.unclaimed.subtract(1, ordering: .relaxed).oldValue <= 0 else {
                inner.handle(packet)
                return
            }
            reader.breakLoop()
        }

        mutating func blockDone(queue: Int) { inner.blockDone(queue: queue) }
    }

    /// One thread per queue, each reading `handle.queues[q]` with an inspector of its own (the
    /// fanout hash keeps a flow on one queue, so the flow tables shard by queue), until -c
    /// packets, `duration` seconds, or SIGINT/SIGTERM; then every reader is broken, the threads
    /// joined, the handle closed and the inspectors merged.
    static func readQueues(
        of handle: PcapHandle, signatures: [Signature], work: SyntheticWork, limit: Int?, duration: Double
    ) throws(PcapError) -> (report: String, inspected: Int) {
        let readers = try Readers(limit: limit)
        let done = DispatchGroup()
        for reader in handle.queues {
            let queue = reader.queue!
            done.enter()
            let thread = Thread {
                var inspector = Limited(inner: WorkingHandler(Inspector(signatures: signatures), work: work), readers: readers, reader: reader)
                defer {
                    readers.inspectors.withLock { $0[queue] = inspector.inner.inner }
                    readers.finished.add(1, ordering: .releasing)
                    readers.finishedEvent.signal()
                    done.leave()
                }
                do throws(PcapError) {
                    while !readers.stopping.load(ordering: .acquiring) && !readers.limitReached {
                        try reader.dispatch(handler: &inspector)
                    }
                } catch {
                    readers.error.withLock { $0 = $0 ?? error }
                    readers.stopping.store(true, ordering: .releasing)
                }
            }
            thread.name = "wirecap-ids q\(queue)"
            thread.start()
        }
        // The main thread waits for a stop signal, the deadline, the budget or an error.
        let deadline = Date().addingTimeInterval(duration)
        while Date() < deadline && !readers.stopping.load(ordering: .acquiring) && !readers.limitReached
            && readers.finished.load(ordering: .acquiring) < handle.queues.count
        {
            let left = max(0, deadline.timeIntervalSinceNow)
            if CWirecapLinux_wait_stop_signal_or_readable(readers.finishedEvent.descriptor, Int32(min(1000, left * 1000 + 1))) > 0 { break }
            readers.finishedEvent.reset()
        }
        readers.stopping.store(true, ordering: .releasing)
        for reader in handle.queues { reader.breakLoop() }
        done.wait()
        let statistics = try? handle.engineStatistics()
        handle.close()
        if let error = readers.error.withLock({ $0 }) { throw error }
        let inspectors = readers.inspectors.withLock { $0 }
        var total = Inspector(signatures: signatures)
        for queue in inspectors.keys.sorted() { total.merge(inspectors[queue]!) }
        var lines = [total.report()]
        for queue in inspectors.keys.sorted() { lines.append("queue \(queue): \(inspectors[queue]!.packets) packets inspected") }
        if let statistics {
            lines.append("received \(statistics.offered)")
            lines.append("dropped \(statistics.captureDrops + statistics.deliveryDrops)")
            lines.append("capture drops \(statistics.captureDrops), delivery drops \(statistics.deliveryDrops), in flight \(statistics.inFlight)")
        }
        return (lines.joined(separator: "\n"), total.packets)
    }

    /// As `wirecap`: the parser's own errors as one line that points at the help.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("wirecap-ids: \(message.replacingOccurrences(of: "Error: ", with: "")) (see `wirecap-ids --help`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }

    /// The flag that sets an engine parameter here; what this command does not set, the
    /// facade's name for it.
    static func flag(_ parameter: ConfigurationError.Parameter) -> String {
        switch parameter {
        case .interface: "-i"
        case .queues: "--queues"
        case .snapLength: "-s"
        case .filter: "the filter expression"
        default: parameter.liveOptionName
        }
    }

    func fail(_ message: CustomStringConvertible) -> ExitCode {
        FileHandle.standardError.write(Data("wirecap-ids: \(message)\n".utf8))
        return .failure
    }
}

extension SyntheticWork.Mode: ExpressibleByArgument {}
