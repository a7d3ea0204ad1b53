import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// Tests that send real frames through a veth pair between two private network namespaces.
    /// They run one at a time: on a 2-core machine, two at once would compete for the cores that
    /// the kernel's receive path and the capture threads need.
    @Suite("Capture through a veth sandbox")
    struct CaptureIntegrationTests {
        @Test("200,000 numbered frames over 4 hash-fanout queues: each captured exactly once, bytes intact", .timeLimit(.minutes(2)))
        func exactlyOnce() throws {
            let total = 200_000
            let queues = 4
            let frames = SequencedFrame(flows: 1024, size: 96)
            try Sandbox.with(queues: queues) { sandbox in
                let configuration = CaptureConfiguration(interface: sandbox.receiverInterface, queues: queues)
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                let ledger = SequenceLedger(expected: total, frames: frames, queues: queues, compareBytes: true)
                try engine.start { ledger.handler(queue: $0) }
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let report = sender.sendSequenced(frames, count: total)
                #expect(report.sent == total)
                #expect(report.refused.isEmpty)
                let deadline = CWirecapLinux_monotonic_ns() + 5_000_000_000
                while engine.statistics().processed < UInt64(total) && CWirecapLinux_monotonic_ns() < deadline { usleep(10_000) }
                engine.stop()
                let stats = engine.statistics()
                let verdict = ledger.verdict()
                print("exactly once: offered \(report.sent) at \(Int(report.packetsPerSecond)) pps; \(verdict); per queue \(stats.queues.map(\.processed))")
                #expect(verdict.exactlyOnce, "\(verdict)")
                #expect(verdict.captured == total)
                #expect(verdict.foreign == 0, "only the test's own frames may be on the pair")
                #expect(stats.processed == UInt64(total))
                #expect(stats.queues.map(\.processed) == verdict.perQueue.map(UInt64.init), "per-queue counters agree with what the handlers saw")
                #expect(stats.queues.allSatisfy { $0.processed > 0 }, "the hash spread the flows over every queue")
                #expect(stats.captureDrops == 0)
                #expect(stats.freezes == 0)
                #expect(stats.inFlight == 0)
                #expect(stats.received == UInt64(total), "the kernel's own count agrees")
                #expect(stats.isConserved)
            }
        }

        @Test("frames sent before the group is ready are not captured, and the counters start at zero", .timeLimit(.minutes(1)))
        func countersStartAtReadiness() throws {
            let frames = SequencedFrame(flows: 8, size: 64)
            try Sandbox.with { sandbox in
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                _ = sender.sendSequenced(frames, count: 500)
                let configuration = CaptureConfiguration(interface: sandbox.receiverInterface, queues: 2)
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                let ledger = SequenceLedger(expected: 1000, frames: frames, queues: 2, compareBytes: false)
                try engine.start { ledger.handler(queue: $0) }
                _ = sender.sendSequenced(frames, count: 500, first: 500)
                let deadline = CWirecapLinux_monotonic_ns() + 3_000_000_000
                while engine.statistics().processed < 500 && CWirecapLinux_monotonic_ns() < deadline { usleep(10_000) }
                engine.stop()
                let verdict = ledger.verdict()
                #expect(verdict.captured == 500)
                #expect(verdict.missing == 500, "the first 500, sent before the capture opened, are not there")
                #expect(engine.statistics().received == 500)
            }
        }
    }
}

extension SandboxSuites {
    @Suite("Fanout modes and clean stop")
    struct FanoutModeTests {
        /// Captures `total` numbered frames through a fresh engine and returns the ledger's verdict.
        func captureOnce(_ sandbox: Sandbox, queues: Int, fanout: FanoutMode, rollover: Bool = false, total: Int) throws -> (SequenceLedger.Verdict, CaptureStatistics) {
            let frames = SequencedFrame(flows: 64, size: 64)
            let configuration = CaptureConfiguration(
                interface: sandbox.receiverInterface, queues: queues, fanout: fanout, rollover: rollover,
                ring: RingGeometry(blockSize: 1 << 16, blockCount: 64, blockTimeoutMilliseconds: 4), snapLength: 2048)
            let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
            let ledger = SequenceLedger(expected: total, frames: frames, queues: queues, compareBytes: true)
            try engine.start { ledger.handler(queue: $0) }
            let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
            _ = sender.sendSequenced(frames, count: total)
            let deadline = CWirecapLinux_monotonic_ns() + 3_000_000_000
            while engine.statistics().processed < UInt64(total) && CWirecapLinux_monotonic_ns() < deadline { usleep(5_000) }
            engine.stop()
            return (ledger.verdict(), engine.statistics())
        }

        @Test("every fanout mode delivers each frame exactly once", arguments: FanoutMode.allCases)
        func modes(fanout: FanoutMode) throws {
            try Sandbox.with(queues: 2) { sandbox in
                let (verdict, stats) = try captureOnce(sandbox, queues: 2, fanout: fanout, total: 20_000)
                print("fanout \(fanout.rawValue): per queue \(stats.queues.map(\.processed)); \(verdict)")
                #expect(verdict.exactlyOnce, "\(verdict)")
                #expect(stats.captureDrops == 0)
                #expect(stats.processed == 20_000)
                #expect(stats.isConserved && stats.inFlight == 0)
            }
        }

        @Test("the rollover flag is accepted and loses nothing when rings have room")
        func rollover() throws {
            try Sandbox.with(queues: 2) { sandbox in
                let (verdict, stats) = try captureOnce(sandbox, queues: 2, fanout: .hash, rollover: true, total: 20_000)
                #expect(verdict.exactlyOnce, "\(verdict)")
                #expect(stats.processed == 20_000)
            }
        }

        @Test("opening and stopping engines again and again leaks no socket and no ring mapping")
        func noLeak() throws {
            func inode(_ fd: Int32) -> UInt64 {
                var st = stat()
                return fstat(fd, &st) == 0 ? UInt64(st.st_ino) : 0
            }
            /// A /proc file read to its end with read(2): its size is 0 to stat, and a reader that
            /// trusts a size hint can stop short of the mappings a busy test process has.
            func readWhole(_ path: String) -> String {
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { return "" }
                defer { close(fd) }
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    bytes += buffer[0..<n]
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            /// Where the socket with this inode still shows up in this process: descriptors, mappings.
            func traces(of inode: UInt64) -> Int {
                let tag = "socket:[\(inode)]"
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
                let open = fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == tag }.count
                let maps = readWhole("/proc/self/maps").split(separator: "\n")
                return open + maps.filter { $0.hasSuffix(" \(inode)") && $0.contains("socket:") || $0.contains(tag) }.count
            }
            try Sandbox.with(queues: 2) { sandbox in
                var inodes: [UInt64] = []
                for round in 0..<10 {
                    let configuration = CaptureConfiguration(
                        interface: sandbox.receiverInterface, queues: 3,
                        ring: RingGeometry(blockSize: 1 << 16, blockCount: 16, blockTimeoutMilliseconds: 4), snapLength: 2048)
                    var engine: CaptureEngine? = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                    let ledger = SequenceLedger(expected: 100, frames: SequencedFrame(flows: 4, size: 64), queues: 3, compareBytes: false)
                    try engine!.start { ledger.handler(queue: $0) }
                    let mine = engine!.queues.map { inode($0.socketDescriptor) }
                    let seen = mine.map { traces(of: $0) }
                    #expect(seen.allSatisfy { $0 >= 2 }, "round \(round): each ring is open and mapped while in use: \(seen) of \(mine)")
                    inodes += mine
                    engine!.stop()
                    engine = nil
                }
                let left = inodes.filter { traces(of: $0) > 0 }
                #expect(left.isEmpty, "sockets or mappings left behind: \(left)")
            }
        }
    }
}
