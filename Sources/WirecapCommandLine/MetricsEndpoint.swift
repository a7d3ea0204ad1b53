import Dispatch
import FlyingFox
import Foundation
import Metrics
import Prometheus
import Synchronization
import WirecapEngine

/// What one scrape reports of one capture (or one forwarding direction): a snapshot per queue,
/// and for the forwarder its frames forwarded and TX errors per queue.
public struct MetricsSample: Sendable {
    public var interface: String
    /// fwd: "IN->OUT"; nil for a capture.
    public var direction: String?
    public var queues: [QueueStatistics]
    public var forwarded: [UInt64]?
    public var transmitErrors: [UInt64]?

    public init(interface: String, direction: String? = nil, queues: [QueueStatistics], forwarded: [UInt64]? = nil, transmitErrors: [UInt64]? = nil) {
        self.interface = interface
        self.direction = direction
        self.queues = queues
        self.forwarded = forwarded
        self.transmitErrors = transmitErrors
    }
}

/// `--metrics ADDRESS:PORT`: `/metrics` in the Prometheus text format, served by FlyingFox's HTTP
/// server on its own threads (Swift concurrency's), never on a capture thread.
///
/// Every scrape takes one statistics snapshot per capture (`sample`), which costs the capture
/// threads nothing: their counters are atomics and per-chunk locks, read, not stopped. The
/// snapshot's figures go into a registry made for the scrape (counters set to the totals, gauges
/// to the levels), so each queue's figures come from one snapshot and obey its conservation law;
/// what the engine counts through swift-metrics goes into a process-wide registry, appended.
public final class MetricsEndpoint: Sendable {
    /// Where it listens, as given to `parse`.
    public let address: String
    private let server: HTTPServer
    private let serving: Task<Void, Never>

    /// Receives what swift-metrics counts (the engine's `wirecap_capture_drops`,
    /// `wirecap_kernel_packets`) once `bootstrap()` has run.
    static let processRegistry = PrometheusCollectorRegistry()
    /// A static's initialiser runs once, on first use, whichever thread gets there.
    private static let bootstrapped: Void = MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: processRegistry))

    /// Makes swift-metrics report into the endpoint's registry. Before any engine opens (its
    /// counters are made then); once per process, however often called.
    public static func bootstrap() { _ = bootstrapped }

    /// `PORT` (on 127.0.0.1) or `IPV4:PORT`; nil when it is neither.
    public static func parse(_ text: String) -> (host: String, port: UInt16)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let portText = parts.last, let port = UInt16(portText), port > 0 else { return nil }
        let host = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return nil }
        return (host, port)
    }

    /// Listens on `host:port` and serves `/metrics` until the process ends; throws a one-line
    /// reason if it cannot listen (the port taken, the address not this machine's).
    public init(host: String, port: UInt16, sample: @escaping @Sendable () -> [MetricsSample]) throws(MetricsEndpointFailure) {
        address = "\(host):\(port)"
        let socketAddress: sockaddr_in
        do { socketAddress = try .inet(ip4: host, port: port) } catch { throw .cannotListen(address: "\(host):\(port)", reason: "\(error)") }
        let server = HTTPServer(address: socketAddress, logger: .disabled)
        self.server = server
        let failure = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        serving = Task {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(
                    statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: Data(Self.render(sample()).utf8))
            }
            let listening = Task {
                try? await server.waitUntilListening(timeout: 5)
                ready.signal()
            }
            do {
                try await server.run()
            } catch {
                failure.withLock { $0 = "\(error)" }
                listening.cancel()
                ready.signal()
            }
        }
        ready.wait()
        if let reason = failure.withLock({ $0 }) { throw .cannotListen(address: address, reason: reason) }
    }

    deinit { serving.cancel() }

    /// The text format of one scrape: the samples' figures, then what swift-metrics counted.
    static func render(_ samples: [MetricsSample]) -> String {
        let registry = PrometheusCollectorRegistry()
        for sample in samples {
            var base = [("interface", sample.interface)]
            if let direction = sample.direction { base.append(("direction", direction)) }
            for (index, q) in sample.queues.enumerated() {
                let labels = base + [("queue", String(q.queue))]
                func counter(_ name: String, _ value: UInt64) {
                    registry.makeCounter(name: name, labels: labels).increment(by: Int64(clamping: value))
                }
                func gauge(_ name: String, _ value: Double) {
                    registry.makeGauge(name: name, labels: labels).set(value)
                }
                counter("wirecap_received_packets_total", q.received)
                counter("wirecap_capture_drops_total", q.captureDrops)
                counter("wirecap_delivery_drops_total", q.deliveryDrops)
                counter("wirecap_processed_packets_total", q.processed)
                counter("wirecap_freezes_total", q.freezes)
                counter("wirecap_offloaded_out_chunks_total", q.offloadedOut)
                counter("wirecap_offloaded_in_chunks_total", q.offloadedIn)
                counter("wirecap_rolled_over_packets_total", q.rolledOver)
                counter("wirecap_rollover_failed_packets_total", q.rolloverFailed)
                counter("wirecap_blocks_lent_total", q.blocksLent)
                counter("wirecap_blocks_copied_total", q.blocksCopied + q.blocksCopiedLater)
                gauge("wirecap_in_flight_packets", Double(q.inFlight))
                gauge("wirecap_backlog_chunks", Double(q.backlog))
                gauge("wirecap_pool_free_chunks", Double(q.poolFree))
                if let forwarded = sample.forwarded, index < forwarded.count { counter("wirecap_forwarded_frames_total", forwarded[index]) }
                if let errors = sample.transmitErrors, index < errors.count { counter("wirecap_tx_errors_total", errors[index]) }
            }
        }
        for thread in Self.threads() {
            registry.makeGauge(name: "wirecap_thread_cpu_seconds", labels: [("thread", thread.id), ("name", thread.name)]).set(thread.seconds)
        }
        return registry.emitToString() + processRegistry.emitToString()
    }

    /// Every thread of this process: its id, name and CPU time (schedstat, ns on CPU).
    static func threads() -> [(id: String, name: String, seconds: Double)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.compactMap { task in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/schedstat", encoding: .utf8),
                let first = stat.split(separator: " ").first, let nanoseconds = Double(first)
            else { return nil }
            let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            return (task, name, nanoseconds / 1e9)
        }
    }
}

/// Why `--metrics` could not serve.
public enum MetricsEndpointFailure: Error, CustomStringConvertible {
    case cannotListen(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotListen(let address, let reason):
            "--metrics \(address): cannot listen (\(reason)); choose a free port on an address of this machine"
        }
    }
}
