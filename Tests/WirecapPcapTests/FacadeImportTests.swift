// Only the facade is imported here, as in an application's file: what it needs must come with it.
import Foundation
import Testing
import WirecapPcap

@Suite("the facade alone")
struct FacadeImportTests {
    /// A handler value for the fast path, named through `import WirecapPcap` only.
    struct Counting: PacketHandler {
        var packets = 0
        var bytes = 0
        mutating func handle(_ packet: Packet) {
            packets += 1
            bytes += packet.capturedLength
        }
    }

    @Test("Packet, PacketHandler, FanoutMode and the engine's counters need no import of the engine")
    func namesComeWithTheFacade() throws {
        let handle = try PcapHandle.openOffline(path: FacadeImportTests.trace)
        defer { handle.close() }
        var counting = Counting()
        let result = try handle.dispatch(handler: &counting)
        #expect(result.processed == counting.packets && counting.packets > 0 && counting.bytes > 0)
        var options = PcapHandle.LiveOptions()
        options.fanout = FanoutMode.lb
        #expect(options.captureConfiguration(device: "eth0").fanout == .lb, "the fanout mode reaches the engine's configuration")
        // A file has no engine counters: the call that returns them throws, by its own type.
        #expect(throws: PcapError.self) {
            let statistics: CaptureStatistics = try handle.engineStatistics()
            let queues: [QueueStatistics] = statistics.queues
            _ = queues
        }
    }

    static var trace: String {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/traces/pcapplusplus/example.pcap").path
    }
}
