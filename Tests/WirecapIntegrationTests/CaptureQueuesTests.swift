#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile

extension SandboxSuites {
    /// What several queues of `wirecap capture` must give over one: the work of each queue on its
    /// own thread, and one file in time order.
    @Suite("wirecap capture: several queues")
    struct CaptureQueuesTests {
        /// Runs `wirecap capture ARGS --stats-json` while `wirecap send` sends `packets` frames at
        /// `pps`, stops it with SIGINT once the sender is done (the stop drains the rings), and
        /// returns the `total` object of the statistics.
        static func capture(_ arguments: [String], packets: Int, pps: Int, flows: Int = 64) throws -> [String: Any] {
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-queues-\(getpid())-\(UUID().uuidString).json").path
            defer { unlink(json) }
            try Sandbox.with(queues: 2) { sandbox in
                let capture = try BackgroundCapture(["-i", sandbox.receiverInterface, "--stats-json", json] + arguments, in: sandbox.receiver)
                try capture.waitUntilListening()
                let sent = try Tool.run(
                    ["send", "-i", sandbox.senderInterface, "--packets", "\(packets)", "--flows", "\(flows)", "--pps", "\(pps)"], in: sandbox.sender)
                #expect(sent.status == 0, "\(sent.stderr)")
                #expect(capture.interrupt() == 0, "\(capture.stderr)")
            }
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
            return try #require(object?["total"] as? [String: Any])
        }

        /// Sleep mode costs no CPU, so on 2 cores the figures depend on the locking, not on how
        /// busy the machine is. 100 us a packet is 10,000 pps a queue; 18,000 pps, split evenly
        /// by `lb`, is 90 % of what two queues can do and 180 % of one. A 256 KiB ring holds
        /// about 1,800 frames, so what one queue cannot keep up with is dropped, not drained
        /// after the stop.
        @Test("--work-ns with sleep runs the work of each queue on its own thread: 2 queues process about twice what 1 does", .timeLimit(.minutes(1)))
        func workDoesNotSerialise() throws {
            let packets = 54_000
            let rate = 18_000
            let common = ["--fanout", "lb", "-s", "2048", "--block-size", "65536", "--blocks", "4", "--work-ns", "100000", "--work-mode", "sleep"]
            let one = try Self.capture(["--queues", "1"] + common, packets: packets, pps: rate)
            let two = try Self.capture(["--queues", "2"] + common, packets: packets, pps: rate)
            let processedOne = one["processed"] as? Int ?? 0
            let processedTwo = two["processed"] as? Int ?? 0
            print(
                "work-ns 100000 sleep, \(packets) frames at \(rate) pps: 1 queue processed \(processedOne) (dropped \(one["capture_drops"] ?? "?")),"
                    + " 2 queues processed \(processedTwo) (dropped \(two["capture_drops"] ?? "?")), ratio \(String(format: "%.2f", Double(processedTwo) / Double(max(processedOne, 1))))")
            #expect(processedOne < packets * 7 / 10, "one queue cannot keep up with 18,000 pps at 100 us a packet")
            #expect(Double(processedTwo) >= 1.6 * Double(processedOne), "two queues work in parallel")
            #expect(processedTwo >= packets * 95 / 100, "two queues keep up")
        }

        /// 20,000 pps for 2 s over 2 queues: each queue's blocks retire on the 8 ms timeout with a
        /// few dozen packets, which, written as they come, go back in time at every switch of queue.
        @Test("-w with 2 queues writes every packet, in time order", .timeLimit(.minutes(1)))
        func fileInTimeOrder() throws {
            let packets = 40_000
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-order-\(getpid()).pcap").path
            defer { unlink(output) }
            let total = try Self.capture(["--queues", "2", "-w", output], packets: packets, pps: 20_000)
            #expect(total["capture_drops"] as? Int == 0)
            let reader = try SavefileReader(path: output)
            var count = 0
            // Records older than the one before them, and records older than some record before them.
            var backwards = 0
            var behind = 0
            var previous = 0
            var newest = 0
            while let record = try reader.nextBorrowed() {
                let time = record.seconds * 1_000_000_000 + record.nanoseconds
                if time < previous { backwards += 1 }
                if time < newest { behind += 1 }
                previous = time
                newest = max(newest, time)
                count += 1
            }
            print("2 queues -w: \(count) of \(packets) records written; \(backwards) go back in time from the record before, \(behind) are older than one before")
            #expect(count == packets, "every packet sent is in the file")
            #expect(backwards == 0 && behind == 0, "records never go back in time")
        }
    }
}
