import CWirecapLinux
import Foundation
import Testing
import WirecapEngine
import WirecapLinux
import WirecapPcap
import WirecapSandbox

extension SandboxSuites {
    /// When the capture interface goes down the kernel posts ENETDOWN on every member socket;
    /// unread, it makes every `poll` return at once, and each capture thread spun a whole core.
    @Suite("the capture interface goes down")
    struct InterfaceDownTests {
        @Test("capture threads rest, and each queue reports the network went down", .timeLimit(.minutes(1)))
        func threadsRest() throws {
            let queues = 2
            try Sandbox.with(queues: queues) { sandbox in
                var configuration = CaptureConfiguration(interface: sandbox.receiverInterface, queues: queues)
                configuration.pinThreads = false
                let engine = try sandbox.receiver.run { try CaptureEngine(configuration: configuration) }
                try engine.start { _ in DiscardingHandler() }
                #expect(engine.socketError == nil)
                try Command.run(["ip", "-n", sandbox.receiver.name, "link", "set", sandbox.receiverInterface, "down"])
                Thread.sleep(forTimeInterval: 1.0)
                engine.stop()
                let stats = engine.statistics()
                let cpu = stats.queues.reduce(0) { $0 + $1.captureCPUSeconds }
                print("interface down: capture threads used \(cpu) s of CPU in about 1 s")
                #expect(cpu < 0.2, "the capture threads rest while the interface is down (they used \(cpu) s)")
                #expect(stats.queues.allSatisfy { $0.lastSocketError == .networkDown && $0.socketErrors >= 1 })
                #expect(engine.socketError?.error == .networkDown)
            }
        }

        @Test("the facade's dispatch throws libpcap's \"The interface went down\", once", .timeLimit(.minutes(1)))
        func facadeDispatch() throws {
            try Sandbox.with(queues: 2) { sandbox in
                var options = PcapHandle.LiveOptions()
                options.queues = 2
                options.timeoutMilliseconds = 100
                let receiver = try sandbox.receiver.run { try PcapHandle.openLive(device: sandbox.receiverInterface, options: options) }
                defer { receiver.close() }
                _ = try receiver.dispatch { _ in }
                try Command.run(["ip", "-n", sandbox.receiver.name, "link", "set", sandbox.receiverInterface, "down"])
                var message: String? = nil
                for _ in 0..<20 where message == nil {
                    do { _ = try receiver.dispatch { _ in } } catch { message = "\(error)" }
                }
                #expect(message == "The interface went down")
                #expect(throws: Never.self) { _ = try receiver.dispatch { _ in } }
            }
        }

        @Test("wirecap capture stops with one line saying the interface went down, and a non-zero exit", .timeLimit(.minutes(1)))
        func captureCommand() throws {
            try Sandbox.with(queues: 2) { sandbox in
                let device = sandbox.receiverInterface
                let namespace = sandbox.receiver.name
                let downer = Thread {
                    Thread.sleep(forTimeInterval: 0.7)
                    _ = try? Command.run(["ip", "-n", namespace, "link", "set", device, "down"])
                }
                downer.start()
                let started = CWirecapLinux_monotonic_ns()
                let outcome = try Tool.run(["capture", "-i", device, "--queues", "2", "--duration", "20"], in: sandbox.receiver)
                let seconds = Double(CWirecapLinux_monotonic_ns() - started) / 1e9
                #expect(outcome.status != 0)
                #expect(seconds < 10, "capture stops when the interface goes down, not at --duration")
                let last = outcome.stderr.split(separator: "\n").last.map(String.init) ?? ""
                #expect(last.hasPrefix("wirecap: capture on \(device) stopped: the interface went down"), "\(outcome.stderr)")
                #expect(last.contains("ip link set \(device) up"))
                #expect(outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("wirecap:") }.count == 1, "one error line: \(outcome.stderr)")
            }
        }
    }
}

/// A handler for captures whose packets do not matter, only the engine's counters.
struct DiscardingHandler: PacketHandler {
    mutating func handle(_ packet: Packet) {}
}
