import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile

/// The error paths of `wirecap capture`, through the real executable: one line on standard
/// error that names the problem and the fix, and a non-zero exit.
@Suite("wirecap capture: errors")
struct CaptureErrorTests {

    @Test("a missing interface")
    func missingInterface() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "wcnosuch0"]), containing: ["wcnosuch0", "no such interface", "ip link"])
    }

    @Test("nonsense sizes, refused before any socket is opened")
    func nonsenseSizes() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--queues", "0"]), containing: ["--queues 0 is out of range", "1 to 256"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--block-size", "5000"]), containing: ["--block-size 5000", "page size", "try 8192"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--block-size", "65536"]),
            containing: ["smaller than one packet of snap length 262144", "raise --block-size", "or lower -s"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--blocks", "0"]), containing: ["--blocks 0"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--block-timeout=-1"]), containing: ["--block-timeout -1 is out of range", "0 to 60000 ms"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "-s", "0"]), containing: ["-s 0 is out of range", "1 to 262144 bytes"])
        expectOneLineError(try Tool.run(["capture", "-i", ""]), containing: ["-i is empty", "ip link"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--block-size", "1073741824", "--blocks", "2048"]),
            containing: ["--blocks 2048 x --block-size 1073741824", "lower --blocks or --block-size"])
    }

    @Test("the engine's refusals name the flag that sets the parameter, never the engine's property")
    func flagNames() throws {
        for arguments in [["--queues", "0"], ["--block-size", "5000"], ["--blocks", "0"], ["-s", "0"], ["--pool-chunks", "8", "--offload-threshold", "2"]] {
            let outcome = try Tool.run(["capture", "-i", "lo"] + arguments)
            expectOneLineError(outcome, containing: [arguments[arguments.count - 2] + " "])
            for engineName in ["ring.", "pool.", "offload.", "snapLength"] { #expect(!outcome.stderr.contains(engineName), "\(outcome.stderr)") }
        }
    }

    @Test("options the parser refuses: one line naming the option and the help to read")
    func parseErrors() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "-Q", "sideways"]), containing: ["'sideways'", "-Q", "inout", "wirecap capture --help"])
        expectOneLineError(try Tool.run(["send", "-i", "lo", "--pps", "-3"]), containing: ["--pps", "wirecap send --help"])
        expectOneLineError(try Tool.run(["capture", "--queues", "many"]), containing: ["'many'", "--queues"])
        expectOneLineError(try Tool.run(["bogus"]), containing: ["'bogus'", "wirecap --help"])
        let help = try Tool.run(["capture", "--help"])
        #expect(help.status == 0 && help.stdout.contains("-Q <in|out|inout>"), "help is still printed whole")
    }

    @Test("an output file that cannot be written")
    func unwritableOutput() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "-w", "/nonexistent/dir/x.pcap"]), containing: ["/nonexistent/dir/x.pcap", "-w"])
    }

    @Test("missing privilege (CAP_NET_RAW)")
    func missingPrivilege() throws {
        if geteuid() == 0 { try #require((try? Command.locate("setpriv")) != nil, "setpriv (util-linux) drops root for this test") }
        expectOneLineError(try Tool.run(["capture", "-i", "lo"], unprivileged: true), containing: ["lo", "CAP_NET_RAW", "run as root"])
    }

    @Test("pool sizes and loads out of range")
    func poolOptions() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--pool-chunks=-1"]), containing: ["--pool-chunks -1 is out of range"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--pool-chunks", "1000000", "--block-size", "1048576"]),
            containing: ["--pool-chunks 1000000", "more than this machine's", "lower --pool-chunks"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--work-ns=-5"]), containing: ["--work-ns -5 is out of range"])
    }

    @Test("--stats-interval out of range, --reconnect with a file")
    func reconnectAndIntervalOptions() throws {
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--stats-interval", "0"]), containing: ["--stats-interval 0 is out of range", "0.1 to"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "-Z", "nobody", "--reconnect"]), containing: ["-Z and --reconnect cannot be combined"])
        expectOneLineError(try Tool.run(["capture", "-i", "lo", "--metrics", "localhost:x"]), containing: ["--metrics localhost:x is not PORT or IPV4:PORT"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--stats-json", "-", "--stats-interval", "inf"]), containing: ["--stats-interval inf is out of range", "0.1 to"])
        expectOneLineError(
            try Tool.run(["capture", "-r", "/dev/null", "--reconnect"]), containing: ["--reconnect needs an interface", "drop --reconnect"])
    }

    @Test("offloading options out of range or without a pool")
    func offloadOptions() throws {
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--pool-chunks", "8", "--block-size", "266240", "--offload-threshold", "1.5"]),
            containing: ["--offload-threshold 1.5 is out of range", "0 to 1"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--offload-threshold", "0.5"]), containing: ["give --pool-chunks 1 or more with --offload-threshold"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--queues", "4", "--pool-chunks", "8", "--offload-threshold", "0.5", "--buddy-groups", "0,1:1,2"]),
            containing: ["--buddy-groups must name every queue 0...3 exactly once", "queue 1 is named twice"])
        expectOneLineError(
            try Tool.run(["capture", "-i", "lo", "--pool-chunks", "8", "--offload-threshold", "0.5", "--buddy-groups", "0,x"]),
            containing: ["--buddy-groups 0,x is not a list of groups"])
    }

    @Test("pool memory that cannot be locked, with --lock-pool required", .disabled(if: Tool.sandboxReason != nil, Tool.sandboxReason ?? ""))
    func poolLockRequired() throws {
        // Root locks anything through CAP_IPC_LOCK; without it, RLIMIT_MEMLOCK applies.
        try #require((try? Command.locate("setpriv")) != nil, "setpriv (util-linux) drops CAP_IPC_LOCK for this test")
        try Sandbox.with { sandbox in
            let outcome = try Tool.run(
                ["capture", "-i", sandbox.receiverInterface, "--pool-chunks", "64", "--lock-pool", "required"], in: sandbox.receiver,
                wrappers: [["setpriv", "--bounding-set", "-ipc_lock"], ["prlimit", "--memlock=8388608:8388608"]])
            expectOneLineError(outcome, containing: ["cannot lock the", "RLIMIT_MEMLOCK", "--lock-pool off"])
        }
    }

    @Test("an interface that is down", .disabled(if: Tool.sandboxReason != nil, Tool.sandboxReason ?? ""))
    func interfaceDown() throws {
        try Sandbox.with { sandbox in
            try Command.run(["ip", "-n", sandbox.receiver.name, "link", "set", sandbox.receiverInterface, "down"])
            expectOneLineError(
                try Tool.run(["capture", "-i", sandbox.receiverInterface], in: sandbox.receiver),
                containing: ["interface is down", "ip link set \(sandbox.receiverInterface) up"])
        }
    }
}

extension SandboxSuites {
    @Suite("wirecap capture: stopping and statistics")
    struct CaptureCommandTests {
        @Test("-c stops at exactly that many packets over several queues; --stats-json has the contract keys", .timeLimit(.minutes(1)))
        func countAndStatistics() throws {
            let directory = FileManager.default.temporaryDirectory
            let output = directory.appendingPathComponent("wirecap-count-\(getpid()).pcap").path
            let json = directory.appendingPathComponent("wirecap-count-\(getpid()).json").path
            defer {
                unlink(output)
                unlink(json)
            }
            try Sandbox.with(queues: 2) { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "3", "-c", "1000", "-w", output, "--stats-json", json], in: sandbox.receiver)
                try capture.waitUntilListening()
                #expect(capture.stderr.contains("listening on \(sandbox.receiverInterface): 3 queues"))
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "5000", "--flows", "64"], in: sandbox.sender)
                #expect(sent.status == 0, "\(sent.stderr)")
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                #expect(capture.stderr.contains("1000 packets captured"), "\(capture.stderr)")
            }
            #expect(try SavefileReader(path: output).readAll().count == 1000)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            #expect(object["interface"] as? String == "wcrecv0")
            let queues = try #require(object["queues"] as? [[String: Any]])
            #expect(queues.count == 3)
            #expect(queues.map { $0["queue"] as? Int } == [0, 1, 2])
            for key in ["received", "capture_drops", "freezes"] {
                #expect(queues.allSatisfy { $0[key] is Int }, "every queue has \(key)")
            }
            let total = try #require(object["total"] as? [String: Any])
            let received = queues.compactMap { $0["received"] as? Int }.reduce(0, +)
            #expect(total["received"] as? Int == received)
            #expect(received >= 1000)
            #expect(total["capture_drops"] as? Int == 0)
        }

        @Test("with a pool, --stats-json carries the pool figures and the conservation law holds per queue", .timeLimit(.minutes(1)))
        func poolStatistics() throws {
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-pool-\(getpid()).json").path
            defer { unlink(json) }
            try Sandbox.with { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "2", "--pool-chunks", "16", "--block-size", "65536", "-s", "2048",
                     "--work-ns", "200", "--work-mode", "spin", "--duration", "2", "--stats-json", json], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "20000", "--flows", "64"], in: sandbox.sender)
                #expect(sent.status == 0)
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                #expect(capture.stderr.contains("20000 packets captured"), "\(capture.stderr)")
            }
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            let queues = try #require(object["queues"] as? [[String: Any]])
            #expect(queues.count == 2)
            for q in queues {
                for key in ["received", "capture_drops", "delivery_drops", "processed", "in_flight", "pool_chunks", "pool_free_min", "chunks_captured", "chunks_recycled"] {
                    #expect(q[key] is Int, "queue has \(key): \(q)")
                }
                let received = q["received"] as? Int ?? -1
                #expect(received == (q["processed"] as? Int ?? 0) + (q["delivery_drops"] as? Int ?? 0) + (q["in_flight"] as? Int ?? 0))
                #expect(q["pool_chunks"] as? Int == 16)
                #expect(q["chunks_captured"] as? Int == q["chunks_recycled"] as? Int)
            }
            let total = try #require(object["total"] as? [String: Any])
            #expect(total["processed"] as? Int == 20000)
            #expect(total["capture_drops"] as? Int == 0)
        }

        @Test("--stats-interval: a line a period on standard error (per queue pkt/s, drops, backlog), and NDJSON with --stats-json", .timeLimit(.minutes(1)))
        func statsInterval() throws {
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-interval-\(getpid()).json").path
            defer { unlink(json) }
            try Sandbox.with(queues: 2) { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "2", "--pool-chunks", "16", "--duration", "2.2", "--stats-interval", "0.25",
                     "--stats-json", json], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sent = try Tool.run(
                    ["send", "-i", sandbox.senderInterface, "--packets", "30000", "--flows", "64", "--pps", "20000"], in: sandbox.sender)
                #expect(sent.status == 0)
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                let lines = capture.stderr.split(separator: "\n").filter { $0.contains(" | all ") }
                print(lines.prefix(4).joined(separator: "\n"))
                // 2.2 s at 0.25 s: about 8 lines (turns may run a little late, never early).
                #expect(lines.count >= 4 && lines.count <= 10, "\(capture.stderr)")
                for line in lines {
                    #expect(line.contains("q0 ") && line.contains("q1 ") && line.contains(" pkt/s ") && line.contains(" backlog "), "\(line)")
                }
                // While the sender runs at 20,000 a second, the total rate says so.
                let rates = lines.compactMap { line -> Int? in
                    guard let all = line.range(of: "| all ") else { return nil }
                    return Int(line[all.upperBound...].split(separator: " ")[0])
                }
                #expect(rates.contains { $0 > 10_000 && $0 < 30_000 }, "\(rates)")
                // NDJSON: one object per line, counts that only grow, the last one the total.
                let objects = try String(contentsOfFile: json, encoding: .utf8).split(separator: "\n").map {
                    try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
                }
                #expect(objects.count >= lines.count)
                let received = objects.compactMap { ($0["total"] as? [String: Any])?["received"] as? Int }
                #expect(received == received.sorted() && received.last == 30_000, "\(received)")
                #expect(objects.allSatisfy { $0["conserved"] as? Bool == true })
            }
        }

        /// Every thread's `Uid:` (real, effective, saved, fs) and effective and permitted
        /// capabilities, from /proc.
        static func threadCredentials(of pid: Int32) throws -> [(uids: [String], capEff: String, capPrm: String)] {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").map { task in
                let status = try String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8).split(separator: "\n")
                func field(_ name: String) -> [String] {
                    (status.first { $0.hasPrefix(name + ":") } ?? "").split(whereSeparator: \.isWhitespace).dropFirst().map(String.init)
                }
                return (field("Uid"), field("CapEff").first ?? "", field("CapPrm").first ?? "")
            }
        }

        @Test("-Z nobody: once open, every thread is nobody's with no capability, packets keep arriving, -w is written as nobody", .timeLimit(.minutes(1)))
        func switchUser() throws {
            let nobody = try #require(getpwnam("nobody")?.pointee.pw_uid)
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-Z-\(getpid()).pcap").path
            unlink(output)
            defer { unlink(output) }
            try Sandbox.with(queues: 2) { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "2", "-Z", "nobody", "-w", output, "--duration", "2.5"], in: sandbox.receiver)
                try capture.waitUntilListening()
                let threads = try Self.threadCredentials(of: capture.process.processIdentifier)
                print("-Z nobody: \(threads.count) threads: \(threads.prefix(3))")
                #expect(threads.count >= 3, "the main thread and two capture threads")
                for thread in threads {
                    #expect(thread.uids == Array(repeating: String(nobody), count: 4), "\(thread)")
                    #expect(thread.capEff == "0000000000000000" && thread.capPrm == "0000000000000000", "\(thread)")
                }
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "2000", "--flows", "16"], in: sandbox.sender)
                #expect(sent.status == 0)
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                #expect(capture.stderr.contains("2000 packets captured"), "\(capture.stderr)")
            }
            var info = stat()
            #expect(stat(output, &info) == 0 && info.st_uid == nobody, "the savefile was made by nobody")
            #expect(try SavefileReader(path: output).readAll().count == 2000)
        }

        @Test("without -Z every capability is dropped once open; --reconnect keeps CAP_NET_RAW, CAP_NET_ADMIN and CAP_IPC_LOCK", .timeLimit(.minutes(1)))
        func capabilitiesDropped() throws {
            try Sandbox.with { sandbox in
                for (extra, expected) in [([String](), "0000000000000000"), (["--reconnect"], "0000000000007000")] {
                    let capture = try BackgroundCapture(["-i", sandbox.receiverInterface, "--duration", "1"] + extra, in: sandbox.receiver)
                    try capture.waitUntilListening()
                    let threads = try Self.threadCredentials(of: capture.process.processIdentifier)
                    #expect(threads.count >= 2)
                    for thread in threads {
                        #expect(thread.uids.first == "0", "still root, without root's powers")
                        #expect(thread.capEff == expected && thread.capPrm == expected, "\(extra): \(thread)")
                    }
                    let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "500"], in: sandbox.sender)
                    #expect(sent.status == 0)
                    capture.process.waitUntilExit()
                    #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                    #expect(capture.stderr.contains("500 packets captured"), "\(capture.stderr)")
                }
            }
        }

        /// GET /metrics from 127.0.0.1:`port` in the calling thread's namespace: the body.
        static func scrape(port: UInt16) throws -> String {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ScrapeFailed(reason: "socket") }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw ScrapeFailed(reason: "connect: errno \(errno)") }
            let request = Array("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
            guard send(fd, request, request.count, 0) == request.count else { throw ScrapeFailed(reason: "send") }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { break }
                response += buffer[0..<n]
            }
            let text = String(decoding: response, as: UTF8.self)
            guard text.hasPrefix("HTTP/1.1 200"), let body = text.range(of: "\r\n\r\n") else { throw ScrapeFailed(reason: String(text.prefix(200))) }
            return String(text[body.upperBound...])
        }
        struct ScrapeFailed: Error { let reason: String }

        /// `name{labels} value` lines of a scrape: value by name and queue label.
        static func values(_ body: String, _ name: String) -> [String: Double] {
            var values: [String: Double] = [:]
            for line in body.split(separator: "\n") where line.hasPrefix(name + "{") {
                guard let queue = line.range(of: "queue=\""), let end = line[queue.upperBound...].firstIndex(of: "\""),
                    let value = line.split(separator: " ").last.flatMap({ Double($0) })
                else { continue }
                values[String(line[queue.upperBound..<end])] = value
            }
            return values
        }

        @Test("--metrics: /metrics during a capture has every queue's counters, moving, conserved in every scrape, and ending at the final JSON", .timeLimit(.minutes(1)))
        func prometheusEndpoint() throws {
            let port = UInt16(19_000 + Int(getpid()) % 1000)
            let json = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-metrics-\(getpid()).json").path
            defer { unlink(json) }
            try Sandbox.with(queues: 2) { sandbox in
                let capture = try BackgroundCapture(
                    ["-i", sandbox.receiverInterface, "--queues", "2", "--pool-chunks", "16", "--metrics", "\(port)", "--duration", "3",
                     "--stats-json", json], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sender = Thread {
                    _ = try? Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "30000", "--flows", "64", "--pps", "20000"], in: sandbox.sender)
                }
                sender.start()
                var scrapes: [String] = []
                for _ in 0..<6 {
                    usleep(300_000)
                    scrapes.append(try sandbox.receiver.run { try Self.scrape(port: port) })
                }
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
                print(scrapes.last!.split(separator: "\n").filter { $0.hasPrefix("wirecap_") }.prefix(8).joined(separator: "\n"))
                var totals: [Double] = []
                for body in scrapes {
                    let received = Self.values(body, "wirecap_received_packets_total")
                    let processed = Self.values(body, "wirecap_processed_packets_total")
                    let delivery = Self.values(body, "wirecap_delivery_drops_total")
                    let inFlight = Self.values(body, "wirecap_in_flight_packets")
                    #expect(Set(received.keys) == ["0", "1"], "every queue labelled: \(body.prefix(400))")
                    for queue in received.keys {
                        #expect(received[queue] == (processed[queue] ?? -1) + (delivery[queue] ?? -1) + (inFlight[queue] ?? -1), "conserved in a scrape")
                    }
                    #expect(Self.values(body, "wirecap_pool_free_chunks").count == 2 && body.contains("wirecap_thread_cpu_seconds{"))
                    totals.append(received.values.reduce(0, +))
                }
                #expect(totals == totals.sorted() && Set(totals).count >= 3, "the counters move: \(totals)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
                let final = try #require((object["total"] as? [String: Any])?["received"] as? Int)
                #expect(final == 30_000 && totals.last! <= Double(final), "\(totals) then \(final)")
            }
        }

        @Test("--stats-json in a directory root does not own is still written at the end, though capabilities are dropped once open", .timeLimit(.minutes(1)))
        func statisticsAfterDrop() throws {
            let nobody = try #require(getpwnam("nobody")?.pointee)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-nobody-\(getpid())").path
            try? FileManager.default.removeItem(atPath: directory)
            #expect(mkdir(directory, 0o755) == 0 && chown(directory, nobody.pw_uid, nobody.pw_gid) == 0)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let json = directory + "/stats.json"
            try Sandbox.with { sandbox in
                let capture = try BackgroundCapture(["-i", sandbox.receiverInterface, "--duration", "1", "--stats-json", json], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "300"], in: sandbox.sender)
                #expect(sent.status == 0)
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0, "\(capture.stderr)")
            }
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            #expect((object["total"] as? [String: Any])?["received"] as? Int == 300)
        }

        @Test("under a Type=notify unit ($NOTIFY_SOCKET): READY=1 with the ready line once listening, STOPPING=1 at the stop", .timeLimit(.minutes(1)))
        func serviceNotification() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-notify-\(getpid()).sock").path
            unlink(path)
            defer { unlink(path) }
            // systemd's side: a datagram socket at $NOTIFY_SOCKET.
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(path.utf8)
                raw.copyBytes(from: bytes.prefix(raw.count - 1))
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0)
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            func receive() -> String {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
            }
            try Sandbox.with { sandbox in
                let capture = try BackgroundCapture(["-i", sandbox.receiverInterface], in: sandbox.receiver, environment: ["NOTIFY_SOCKET": path])
                try capture.waitUntilListening()
                let ready = receive()
                #expect(ready == "READY=1\nSTATUS=listening on \(sandbox.receiverInterface): 1 queues", "\(ready)")
                #expect(capture.interrupt() == 0, "\(capture.stderr)")
                #expect(receive() == "STOPPING=1")
            }
        }

        @Test("--duration stops the capture by itself and the file is complete", .timeLimit(.minutes(1)))
        func duration() throws {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("wirecap-duration-\(getpid()).pcap").path
            defer { unlink(output) }
            try Sandbox.with { sandbox in
                let capture = try BackgroundCapture(["-i", sandbox.receiverInterface, "--duration", "1.5", "-w", output], in: sandbox.receiver)
                try capture.waitUntilListening()
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "300"], in: sandbox.sender)
                #expect(sent.status == 0)
                capture.process.waitUntilExit()
                #expect(capture.process.terminationStatus == 0)
                #expect(capture.stderr.contains("300 packets captured"), "\(capture.stderr)")
            }
            let records = try SavefileReader(path: output).readAll()
            #expect(records.count == 300)
            #expect(records.allSatisfy { record in record.bytes.withUnsafeBytes { SequencedFrame.sequence(of: $0) } != nil })
        }
    }
}
