import Foundation
import Testing
import WirecapSandbox
import WirecapSavefile
import WirecapTestSupport

/// libwirecap-pcap.so under unmodified programs: Debian's tcpdump, and two plain libpcap
/// programs in the styles of Zeek and Suricata (Tests/PreloadPrograms), each run with
/// LD_PRELOAD as a user would.
enum Preload {
    /// The library built next to this test binary (`swift build` builds every product).
    static var library: String { Tool.built("libwirecap-pcap.so") }

    static func tcpdump() throws -> String { try Command.locate("tcpdump") }

    /// `command` with the library preloaded, through env(1) so that only `command` loads it
    /// (not `ip netns exec` around it).
    static func preloaded(_ command: [String]) -> [String] { ["/usr/bin/env", "LD_PRELOAD=\(library)"] + command }

    /// The frames of a savefile, sorted: two captures hold the same frames when these are equal
    /// (the order across queues differs from one socket's; per flow it is the wire's).
    static func sortedFrames(_ path: String) throws -> [[UInt8]] {
        try SavefileReader(path: path).readAll().map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The first 4 bytes of a file: the savefile's magic number.
    static func magic(_ path: String) throws -> UInt32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.prefix(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    /// Runs `command ARGS` (ready when it says "listening on") in the receiver's namespace while
    /// `wirecap send` sends `packets` frames over 64 flows at `pps`; then, unless it ended by
    /// itself, SIGINT. Returns its exit status and standard error.
    static func capture(
        _ command: [String], in sandbox: Sandbox, packets: Int, pps: Int, interrupt: Bool = true
    ) throws -> (status: Int32, stderr: String) {
        let running = try BackgroundCapture([], in: sandbox.receiver, command: command)
        try running.waitUntilListening()
        let sent = try Tool.run(
            ["send", "-i", sandbox.senderInterface, "--packets", "\(packets)", "--flows", "64", "--pps", "\(pps)"], in: sandbox.sender)
        #expect(sent.status == 0, "\(sent.stderr)")
        if interrupt {
            // What the kernel has accepted is in the rings or on its way out: give the reader a
            // moment, as a person would before pressing Ctrl-C.
            usleep(1_500_000)
            return (running.interrupt(), running.stderr)
        }
        let deadline = Date().addingTimeInterval(30)
        while running.process.isRunning && Date() < deadline { usleep(50_000) }
        if running.process.isRunning { return (running.interrupt(), "still running 30 s after the send: " + running.stderr) }
        return (running.process.terminationStatus, running.stderr)
    }

    /// The number in tcpdump's (and the style readers') closing line "N <what>".
    static func figure(_ stderr: String, _ what: String) -> Int? {
        for line in stderr.split(separator: "\n") where line.hasSuffix(what) {
            if let n = Int(line.split(separator: " ")[0]) { return n }
        }
        return nil
    }
}

extension SandboxSuites {
    @Suite("libwirecap-pcap.so under unmodified libpcap programs")
    struct PreloadTests {
        /// 64 flows with source ports 1024...1087: the filter passes half of them.
        static let filter = "udp src portrange 1024-1055"

        @Test("tcpdump over 2 wirecap queues writes exactly the frames tcpdump writes alone, and drops none", .timeLimit(.minutes(3)))
        func tcpdumpSameFrames() throws {
            let tcpdump = try Preload.tcpdump()
            let packets = 300_000
            // The sender gives frame i to flow i % 64, and the filter passes flows 0...31.
            let passing = (0..<packets).filter { $0 % 64 < 32 }.count
            let plainFile = temporaryPath("preload", "plain.pcap")
            let wirecapFile = temporaryPath("preload", "wirecap.pcap")
            defer {
                unlink(plainFile)
                unlink(wirecapFile)
            }
            try Sandbox.with(queues: 2) { sandbox in
                let plain = try Preload.capture(
                    [tcpdump, "-i", sandbox.receiverInterface, "-w", plainFile, Self.filter], in: sandbox, packets: packets, pps: 100_000)
                #expect(plain.status == 0, "\(plain.stderr)")
                let device = "wirecap:\(sandbox.receiverInterface):queues=2"
                let wirecap = try Preload.capture(
                    Preload.preloaded([tcpdump, "-i", device, "-w", wirecapFile, Self.filter]), in: sandbox, packets: packets, pps: 100_000)
                #expect(wirecap.status == 0, "\(wirecap.stderr)")
                #expect(wirecap.stderr.contains("listening on \(device), link-type EN10MB (Ethernet)"), "\(wirecap.stderr)")
                #expect(Preload.figure(wirecap.stderr, "packets dropped by kernel") == 0, "\(wirecap.stderr)")
                // Half the flows pass the filter: every one of their frames, nothing else.
                #expect(Preload.figure(wirecap.stderr, "packets captured") == passing, "\(wirecap.stderr)")
                #expect(Preload.figure(plain.stderr, "packets captured") == passing, "\(plain.stderr)")
            }
            let plainFrames = try Preload.sortedFrames(plainFile)
            let wirecapFrames = try Preload.sortedFrames(wirecapFile)
            #expect(wirecapFrames.count == passing)
            #expect(wirecapFrames == plainFrames, "the same frames, byte for byte")
        }

        @Test("tcpdump's -c, -Q in, --time-stamp-precision=nano and -Z nobody, with a filter, over the preload", .timeLimit(.minutes(2)))
        func tcpdumpOptions() throws {
            let tcpdump = try Preload.tcpdump()
            let file = temporaryPath("preload", "options.pcap")
            defer { unlink(file) }
            try Sandbox.with(queues: 2) { sandbox in
                let device = "wirecap:\(sandbox.receiverInterface):queues=2"
                let run = try Preload.capture(
                    Preload.preloaded([tcpdump, "-i", device, "-c", "20000", "-Q", "in", "--time-stamp-precision=nano", "-Z", "nobody", "-w", file, "udp"]),
                    in: sandbox, packets: 30_000, pps: 50_000, interrupt: false)
                #expect(run.status == 0, "tcpdump ends by itself at -c: \(run.stderr)")
                #expect(Preload.figure(run.stderr, "packets captured") == 20_000, "\(run.stderr)")
                #expect(Preload.figure(run.stderr, "packets dropped by kernel") == 0, "\(run.stderr)")
            }
            var status = stat()
            #expect(stat(file, &status) == 0)
            #expect(status.st_uid == 65534, "-Z nobody: the file is written as nobody")
            #expect(try Preload.magic(file) == 0xa1b2_3c4d, "a nanosecond pcap file")
            let records = try SavefileReader(path: file).readAll()
            #expect(records.count == 20_000)
            #expect(records.allSatisfy { $0.bytes.count == 64 && $0.bytes[23] == 17 }, "the sender's UDP frames, whole")
        }

        /// Without -w, tcpdump gives up root (Debian's tcpdump runs as the user tcpdump) before
        /// it compiles and sets its filter; libpcap's own socket stays open and needs nothing
        /// more, and neither does a wirecap handle (the facade keeps a compile handle from the
        /// open). Before, the filter was refused for want of CAP_NET_RAW.
        @Test("tcpdump printing (no -w, root given up before the filter is set) decodes every frame through the filter", .timeLimit(.minutes(2)))
        func tcpdumpPrinting() throws {
            let tcpdump = try Preload.tcpdump()
            let output = temporaryPath("preload", "printed.txt")
            defer { unlink(output) }
            try Sandbox.with(queues: 2) { sandbox in
                let device = "wirecap:\(sandbox.receiverInterface):queues=2"
                let running = try BackgroundCapture(
                    [], in: sandbox.receiver, command: Preload.preloaded([tcpdump, "-i", device, "-nn", Self.filter]), stdoutPath: output)
                try running.waitUntilListening()
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "6400", "--flows", "64", "--pps", "20000"], in: sandbox.sender)
                #expect(sent.status == 0, "\(sent.stderr)")
                usleep(1_000_000)
                #expect(running.interrupt() == 0, "\(running.stderr)")
                #expect(Preload.figure(running.stderr, "packets captured") == 3_200, "\(running.stderr)")
            }
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 3_200)
            #expect(lines.allSatisfy { $0.contains(" IP 198.18.") && $0.contains(": UDP, length ") }, "\(lines.prefix(3))")
        }

        @Test("Zeek-style (non-blocking, selectable fd, pcap_next_ex) and Suricata-style (pcap_dispatch(64), pcap_stats a second) readers lose nothing", .timeLimit(.minutes(3)))
        func styleReaders() throws {
            let packets = 100_000
            for program in ["zeek-style-reader", "suricata-style-reader"] {
                let file = temporaryPath("preload", "\(program).pcap")
                defer { unlink(file) }
                try Sandbox.with(queues: 2) { sandbox in
                    let device = "wirecap:\(sandbox.receiverInterface):queues=2,pool=32"
                    let run = try Preload.capture(
                        Preload.preloaded([Tool.built(program), device, "udp", file, "\(packets)", "10"]), in: sandbox, packets: packets, pps: 50_000,
                        interrupt: false)
                    #expect(run.status == 0, "\(program): \(run.stderr)")
                    #expect(Preload.figure(run.stderr, "packets captured") == packets, "\(program): \(run.stderr)")
                    #expect(Preload.figure(run.stderr, "packets dropped by kernel") == 0, "\(program): \(run.stderr)")
                    #expect((Preload.figure(run.stderr, "packets received by filter") ?? 0) >= packets, "\(program): \(run.stderr)")
                    if program == "suricata-style-reader" {
                        #expect(run.stderr.contains("stats recv="), "pcap_stats every second: \(run.stderr)")
                    }
                }
                let frames = try SavefileReader(path: file).readAll().map(\.bytes)
                #expect(frames.count == packets, "\(program)")
                #expect(Set(frames).count == packets, "\(program): every frame once (each carries its own sequence number)")
            }
        }

        /// pcap_setfilter with a program compiled elsewhere (on a dead handle), in memory that
        /// held a program the wirecap handle compiled: the library once recognised its own
        /// programs by address, and installed the old expression for whatever lay there.
        @Test("a filter compiled on another handle is the one installed, even in memory that held the handle's own program", .timeLimit(.minutes(1)))
        func foreignFilter() throws {
            let output = temporaryPath("preload", "ports.txt")
            defer { unlink(output) }
            try Sandbox.with(queues: 2) { sandbox in
                let device = "wirecap:\(sandbox.receiverInterface):queues=2"
                let running = try BackgroundCapture(
                    [], in: sandbox.receiver,
                    command: Preload.preloaded([Tool.built("foreign-filter-reader"), device, "udp src port 1024", "udp src port 1025", "100", "5"]),
                    stdoutPath: output)
                try running.waitUntilListening()
                let sent = try Tool.run(["send", "-i", sandbox.senderInterface, "--packets", "6400", "--flows", "64", "--pps", "20000"], in: sandbox.sender)
                #expect(sent.status == 0, "\(sent.stderr)")
                running.process.waitUntilExit()
                #expect(running.process.terminationStatus == 0, "\(running.stderr)")
                #expect(Preload.figure(running.stderr, "packets captured") == 100, "\(running.stderr)")
            }
            let ports = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
            #expect(ports.count == 100)
            #expect(ports.allSatisfy { $0 == "1025" }, "only the foreign filter's port: \(Set(ports))")
        }

        @Test("files and other interfaces go to the real libpcap untouched", .timeLimit(.minutes(2)))
        func othersUntouched() throws {
            let tcpdump = try Preload.tcpdump()
            // A file, read as text and as a filtered count: the same output either way.
            let files = try FileManager.default.contentsOfDirectory(atPath: Tool.corpus.path).filter { $0.hasSuffix(".pcap") }.sorted().prefix(8)
            #expect(files.count == 8, "tcpdump's test corpus beside the checkout")
            for name in files {
                let path = Tool.corpus.appendingPathComponent(name).path
                for arguments in [["-nn", "-v", "-r", path], ["-nn", "--count", "-r", path, "ip"]] {
                    let alone = try runProgram(tcpdump, arguments)
                    let preloaded = try runProgram("/usr/bin/env", ["LD_PRELOAD=\(Preload.library)", tcpdump] + arguments)
                    #expect(preloaded.stdout == alone.stdout && preloaded.stderr == alone.stderr && preloaded.status == alone.status, "\(name) \(arguments)")
                }
            }
            // A plain interface name opens libpcap's own socket.
            let file = temporaryPath("preload", "plain-name.pcap")
            defer { unlink(file) }
            try Sandbox.with(queues: 2) { sandbox in
                let run = try Preload.capture(
                    Preload.preloaded([tcpdump, "-i", sandbox.receiverInterface, "-w", file]), in: sandbox, packets: 10_000, pps: 50_000)
                #expect(run.status == 0, "\(run.stderr)")
                #expect(run.stderr.contains("listening on \(sandbox.receiverInterface), link-type EN10MB"), "\(run.stderr)")
                #expect((Preload.figure(run.stderr, "packets captured") ?? 0) >= 10_000, "\(run.stderr)")
            }
        }
    }
}

/// What needs no sandbox: the device list, and the errors a bad wirecap name gets.
@Suite("libwirecap-pcap.so: device list and errors")
struct PreloadErrorTests {
    @Test("tcpdump -D lists a wirecap: entry for each interface, after libpcap's own list unchanged")
    func deviceList() throws {
        let tcpdump = try Preload.tcpdump()
        let alone = try runProgram(tcpdump, ["-D"])
        let preloaded = try runProgram("/usr/bin/env", ["LD_PRELOAD=\(Preload.library)", tcpdump, "-D"])
        #expect(preloaded.status == 0, "\(preloaded.stderr)")
        let real = alone.stdout.split(separator: "\n")
        let listed = preloaded.stdout.split(separator: "\n")
        #expect(Array(listed.prefix(real.count)) == real, "libpcap's own devices first, as they were")
        let added = listed.dropFirst(real.count)
        #expect(added.contains { $0.contains("wirecap:lo (wirecap multi-queue capture on lo") }, "\(preloaded.stdout)")
        #expect(!added.contains { $0.contains("wirecap:any") }, "pseudo-devices have no wirecap entry")
    }

    @Test(
        "a bad wirecap name ends tcpdump with one line naming the setting and what works",
        arguments: [
            ("wirecap:lo:queues=0", "queues=0 must be a positive whole number"),
            ("wirecap:lo:offload=2", "offload=2 is not a threshold in 0...1"),
            ("wirecap:lo:bogus=1", "unknown setting \"bogus=1\""),
            ("wirecap:", "no interface after \"wirecap:\""),
            // libpcap's status for a missing device (tcpdump prints pcap_statustostr of it), then why.
            ("wirecap:nosuch0", "No such device exists\n(wirecap:nosuch0: cannot capture on nosuch0: no such interface"),
        ])
    func badNames(device: String, phrase: String) throws {
        let tcpdump = try Preload.tcpdump()
        let run = try runProgram("/usr/bin/env", ["LD_PRELOAD=\(Preload.library)", tcpdump, "-i", device, "-c", "1"])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains(phrase), "\(run.stderr)")
        #expect(run.stderr.hasPrefix("tcpdump: "), "\(run.stderr)")
    }
}
