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
        options.fanout = FanoutMode.hash
        let statistics: CaptureStatistics? = nil
        let queue: QueueStatistics? = statistics?.queues.first
        #expect(queue == nil)
    }

    static var trace: String {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/traces/pcapplusplus/example.pcap").path
    }
}
