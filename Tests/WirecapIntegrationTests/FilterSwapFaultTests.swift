import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapSandbox

extension SandboxSuites {
    /// A live filter swap the kernel refuses must leave the capture as it was: before, every
    /// member kept the drop-all filter of the swap's first step and nothing counted what it
    /// dropped.
    @Suite("a refused filter swap rolls back")
    struct FilterSwapFaultTests {
        /// `ld [0]`, `count - 2` of `jeq #i` (falling through either way), `ret #65535`: valid
        /// classic BPF that accepts everything, only too long.
        static func longProgram(_ count: Int) -> [BPFInstruction] {
            [BPFInstruction(code: 0x20, jt: 0, jf: 0, k: 0)]
                + (0..<(count - 2)).map { BPFInstruction(code: 0x15, jt: 0, jf: 0, k: UInt32($0)) }
                + [BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 65_535)]
        }

        @Test("a program over 4096 instructions, and one over 65535, are refused; traffic still flows under the old filter on every queue",
              .timeLimit(.minutes(1)))
        func refusedSwap() throws {
            let queues = 2
            let frames = SequencedFrame(flows: 64, size: 64)
            try Sandbox.with(queues: queues) { sandbox in
                let configuration = CaptureConfiguration(interface: sandbox.receiverInterface, queues: queues)
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                let ledger = SequenceLedger(expected: 3_000, frames: frames, queues: queues, compareBytes: false)
                try engine.start { ledger.handler(queue: $0) }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                func sendAndWait(first: Int) {
                    _ = sender.sendSequenced(frames, count: 1_000, first: UInt64(first))
                    let deadline = CWirecapLinux_monotonic_ns() + 3_000_000_000
                    while engine.statistics().processed < UInt64(first + 1_000) && CWirecapLinux_monotonic_ns() < deadline { usleep(10_000) }
                }
                sendAndWait(first: 0)
                #expect(throws: CaptureError.self) { _ = try engine.replaceFilter(Self.longProgram(5_000)) }
                sendAndWait(first: 1_000)
                #expect(engine.statistics().processed == 2_000, "the old filter still accepts on every queue")
                #expect(throws: CaptureError.self) { _ = try engine.replaceFilter(Self.longProgram(70_000)) }
                sendAndWait(first: 2_000)
                engine.stop()
                let stats = engine.statistics()
                #expect(stats.processed == 3_000)
                #expect(stats.queues.allSatisfy { $0.processed > 0 }, "every queue captures")
                #expect(ledger.verdict().exactlyOnce)
            }
        }
    }
}
