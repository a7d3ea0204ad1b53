import Testing
import WirecapEngine
@testable import WirecapLab
import WirecapSandbox

/// The ids scenario's per-packet work is the example IDS itself, in every engine.
@Suite("lab: the IDS as a load")
struct LabLoadTests {
    @Test("ids points run the inspector over every packet; other scenarios do not")
    func inspectorIsTheWork() throws {
        let suite = ExperimentSuite.standard(scenarios: [.ids, .load], quick: true, tracePath: "/any/trace.pcap")
        let ids = suite.points.filter { $0.scenario == .ids }
        #expect(Set(ids.map(\.setup.engine)) == Set(LabEngine.capture))
        let ledger = SequenceLedger(expected: 0, frames: SequencedFrame(flows: 1, size: 64), queues: 2, compareBytes: false)
        let order = FlowOrder(frames: SequencedFrame(flows: 1, size: 64), expected: 0, slots: 2)
        var frame = Array(repeating: UInt8(0), count: 60)
        frame.replaceSubrange(40..<44, with: Array("GET ".utf8))
        for point in suite.points {
            var handler = point.handler(ledger: ledger, order: order, queue: 0)
            frame.withUnsafeBytes { bytes in
                handler.handle(Packet(bytes: bytes, wireLength: bytes.count, seconds: 0, nanoseconds: 0, queue: 0))
            }
            if point.scenario == .ids {
                #expect(point.workNanoseconds == 0, "no synthetic work on top")
                let inspector = try #require(handler.inner.inner.inspector)
                #expect(inspector.packets == 1)
                #expect(inspector.matches[0] == 1, "the frame holds \"GET \"")
            } else {
                #expect(handler.inner.inner.inspector == nil)
            }
        }
    }
}
