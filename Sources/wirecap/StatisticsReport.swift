import Foundation
import WirecapEngine

/// The `--stats-json` object. Keys are a contract other tools read; add, never rename.
struct StatisticsReport: Encodable {
    struct Queue: Encodable {
        let queue: Int
        let received: UInt64
        let captureDrops: UInt64
        let freezes: UInt64
        let kernelAccepted: UInt64
        let unread: UInt64
        let cpuSeconds: Double
    }
    struct Total: Encodable {
        let received: UInt64
        let captureDrops: UInt64
        let freezes: UInt64
        let kernelAccepted: UInt64
        let unread: UInt64
        let captured: UInt64
        let cpuSeconds: Double
    }
    let interface: String
    let queues: [Queue]
    let total: Total
    let seconds: Double

    init(interface: String, statistics: CaptureStatistics, captured: UInt64, seconds: Double) {
        self.interface = interface
        queues = statistics.queues.map {
            Queue(
                queue: $0.queue, received: $0.received, captureDrops: $0.captureDrops, freezes: $0.freezes,
                kernelAccepted: $0.kernelAccepted, unread: $0.unread, cpuSeconds: $0.cpuSeconds)
        }
        total = Total(
            received: statistics.received, captureDrops: statistics.captureDrops, freezes: statistics.freezes,
            kernelAccepted: statistics.kernelAccepted, unread: statistics.unread, captured: captured,
            cpuSeconds: statistics.cpuSeconds)
        self.seconds = seconds
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    func write(to path: String) throws {
        var data = try json()
        data.append(0x0a)
        if path == "-" {
            FileHandle.standardOutput.write(data)
        } else {
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}
