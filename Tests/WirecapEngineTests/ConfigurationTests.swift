import Foundation
import Testing
import WirecapEngine

@Suite("Capture configuration")
struct ConfigurationTests {
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    func refusal(_ configure: (inout CaptureConfiguration) -> Void) -> CaptureError? {
        var configuration = CaptureConfiguration(interface: "eth0")
        configure(&configuration)
        do {
            try configuration.validate()
            return nil
        } catch {
            return error
        }
    }

    func expect(
        _ expected: ConfigurationError, sourceLocation: SourceLocation = #_sourceLocation, _ configure: (inout CaptureConfiguration) -> Void
    ) {
        var configuration = CaptureConfiguration(interface: "eth0")
        configure(&configuration)
        #expect(throws: CaptureError.configuration(expected), sourceLocation: sourceLocation) { try configuration.validate() }
    }

    @Test("the defaults are valid and hold a full default snap length")
    func defaults() throws {
        let configuration = CaptureConfiguration(interface: "eth0")
        try configuration.validate()
        #expect(configuration.ring.blockSize >= CaptureConfiguration.minimumBlockSize(snapLength: configuration.snapLength))
    }

    @Test("each problem is refused as a value: the parameter, the value given, and what works")
    func values() {
        let page = Self.page
        expect(.missingInterface) { $0.interface = "" }
        expect(.outOfRange(.queues, value: 0, allowed: 1...256)) { $0.queues = 0 }
        expect(.outOfRange(.queues, value: 100_000, allowed: 1...256)) { $0.queues = 100_000 }
        expect(.notPageMultiple(.blockSize, value: page + 1, page: page, suggestion: 2 * page)) { $0.ring.blockSize = page + 1 }
        expect(.notPageMultiple(.blockSize, value: 0, page: page, suggestion: page)) { $0.ring.blockSize = 0 }
        expect(.notPageMultiple(.blockSize, value: -page, page: page, suggestion: page)) { $0.ring.blockSize = -page }
        expect(.outOfRange(.blockSize, value: 1 << 31, allowed: page...(1 << 30))) { $0.ring.blockSize = 1 << 31 }
        expect(.outOfRange(.blockCount, value: 0, allowed: 1...(1 << 20))) { $0.ring.blockCount = 0 }
        expect(.outOfRange(.blockCount, value: (1 << 20) + 1, allowed: 1...(1 << 20))) { $0.ring.blockCount = (1 << 20) + 1 }
        expect(.ringTooLarge(blockSize: 1 << 30, blockCount: 2048, limit: 1 << 40)) {
            $0.ring.blockSize = 1 << 30
            $0.ring.blockCount = 2048
        }
        expect(.outOfRange(.blockTimeout, value: -1, allowed: 0...60_000)) { $0.ring.blockTimeoutMilliseconds = -1 }
        expect(.outOfRange(.blockTimeout, value: 60_001, allowed: 0...60_000)) { $0.ring.blockTimeoutMilliseconds = 60_001 }
        expect(.outOfRange(.snapLength, value: 0, allowed: 1...262_144)) { $0.snapLength = 0 }
        expect(.outOfRange(.poolChunks, value: 0, allowed: 1...(1 << 20))) { $0.pool = PoolConfiguration(chunks: 0) }
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * page
        expect(.poolTooLarge(chunks: 1 << 20, blockSize: 1 << 20, queues: 2, bytes: 1 << 41, physical: physical)) {
            $0.queues = 2
            $0.pool = PoolConfiguration(chunks: 1 << 20)
        }
        expect(.notAFraction(.offloadThreshold, value: 1.5)) {
            $0.pool = PoolConfiguration(chunks: 8)
            $0.offload = OffloadConfiguration(threshold: 1.5)
        }
        expect(.offloadNeedsPool) { $0.offload = OffloadConfiguration(threshold: 0.5) }
        expect(.buddyGroupsIncomplete([[0, 1], [1, 2]], queues: 4)) {
            $0.queues = 4
            $0.pool = PoolConfiguration(chunks: 8)
            $0.offload = OffloadConfiguration(threshold: 0.5, groups: [[0, 1], [1, 2]])
        }
        expect(.filterLength(0)) { $0.filter = [] }
        expect(.filterLength(4097)) { $0.filter = Array(repeating: BPFInstruction(code: 0x06, jt: 0, jf: 0, k: 0), count: 4097) }
    }

    @Test("a block smaller than one snap-length packet is refused, with a size that works")
    func blockSmallerThanSnapLength() throws {
        let error = try #require(refusal { $0.ring.blockSize = 8192 })
        guard case .configuration(.blockTooSmall(let blockSize, let needed, let snapLength, let suggestion)) = error else {
            Issue.record("\(error)")
            return
        }
        #expect(blockSize == 8192 && snapLength == 262_144)
        #expect(needed == CaptureConfiguration.minimumBlockSize(snapLength: 262_144))
        #expect(suggestion >= needed && suggestion % Self.page == 0 && suggestion - needed < Self.page)
        // The suggested size must itself be accepted.
        #expect(refusal { $0.ring.blockSize = suggestion } == nil)
        // And a small snap length makes small blocks fine.
        #expect(refusal { $0.ring.blockSize = 4096; $0.snapLength = 1500 } == nil)
    }

    @Test("the engine's text speaks the library's terms: no command-line flag, one line")
    func engineTerms() {
        for error in Self.examples {
            let text = error.description
            #expect(!text.contains("--") && !text.contains(" -s") && !text.contains(" -i") && !text.contains("\n"), "\(text)")
            #expect(CaptureError.configuration(error).description == text)
        }
        #expect(
            ConfigurationError.notPageMultiple(.blockSize, value: 1000, page: 4096, suggestion: 4096).description
                == "ring.blockSize 1000 is not a positive multiple of the page size 4096: try 4096")
        #expect(
            ConfigurationError.outOfRange(.queues, value: 0, allowed: 1...256).description
                == "queues 0 is out of range: use 1 to 256 (one per core is typical)")
    }

    @Test("a front end's names replace the engine's wherever a parameter is named")
    func naming() {
        for error in Self.examples {
            let text = error.description(naming: { "<\($0.rawValue)>" })
            for parameter in ConfigurationError.Parameter.allCases where parameter.configurationName.contains(".") {
                #expect(!text.contains(parameter.configurationName), "\(text)")
            }
        }
        #expect(
            ConfigurationError.blockTooSmall(blockSize: 8192, needed: 262_256, snapLength: 262_144, suggestion: 266_240)
                .description(naming: { "<\($0.rawValue)>" })
                == "<blockSize> 8192 is smaller than one packet of snap length 262144 plus headers (262256 bytes): raise <blockSize> to 266240 or lower <snapLength>")
        #expect(CaptureError.noSuchInterface("eth9").description(naming: { _ in "x" }) == CaptureError.noSuchInterface("eth9").description)
    }

    @Test("buddy groups that do not cover the queues say what is wrong with them")
    func buddyGroupFlaws() {
        func flaw(_ groups: [[Int]], _ queues: Int) -> String { ConfigurationError.buddyGroupsIncomplete(groups, queues: queues).description }
        #expect(flaw([[0, 1], [1, 2]], 4).hasSuffix("must name every queue 0...3 exactly once: queue 1 is named twice"))
        #expect(flaw([[0, 1], []], 2).hasSuffix("a group is empty"))
        #expect(flaw([[0, 5]], 2).hasSuffix("there is no queue 5"))
        #expect(flaw([[0], [2]], 4).hasSuffix("queues 1, 3 are in no group"))
        #expect(flaw([[1]], 2).hasSuffix("queue 0 is in no group"))
    }

    @Test("a missing interface is named as such")
    func missingInterface() {
        #expect(throws: CaptureError.noSuchInterface("wirecap-none0")) {
            try CaptureEngine(configuration: CaptureConfiguration(interface: "wirecap-none0"))
        }
    }

    /// One of every case; `kind` makes this list fail to compile when a case is added.
    static let examples: [ConfigurationError] = [
        .missingInterface,
        .outOfRange(.queues, value: 0, allowed: 1...256),
        .outOfRange(.blockCount, value: 0, allowed: 1...(1 << 20)),
        .outOfRange(.blockTimeout, value: -1, allowed: 0...60_000),
        .outOfRange(.snapLength, value: 0, allowed: 1...262_144),
        .outOfRange(.poolChunks, value: 0, allowed: 1...(1 << 20)),
        .outOfRange(.blockSize, value: 1 << 31, allowed: 4096...(1 << 30)),
        .notPageMultiple(.blockSize, value: 5000, page: 4096, suggestion: 8192),
        .notAFraction(.offloadThreshold, value: 1.5),
        .ringTooLarge(blockSize: 1 << 30, blockCount: 2048, limit: 1 << 40),
        .blockTooSmall(blockSize: 8192, needed: 262_256, snapLength: 262_144, suggestion: 266_240),
        .poolTooLarge(chunks: 1 << 20, blockSize: 1 << 20, queues: 1, bytes: 1 << 40, physical: 1 << 33),
        .offloadNeedsPool,
        .chunksNeedPool,
        .buddyGroupsIncomplete([[0, 1], [1, 2]], queues: 4),
        .filterLength(5000),
        .filterRefused(interface: "eth0"),
        .ringAllocationFailed(interface: "eth0", blockSize: 1 << 20, blockCount: 32),
        .transmitRingAllocationFailed(interface: "eth0", bytes: 1 << 24),
        .poolAllocationFailed(queue: 0, chunks: 64, chunkSize: 1 << 20),
        .poolLockFailed(queue: 0, bytes: 1 << 26, errno: EPERM, limit: 8 << 20),
        .poolLockFailed(queue: 1, bytes: 1 << 26, errno: ENOMEM, limit: nil),
    ]

    static func kind(_ error: ConfigurationError) -> Int {
        switch error {
        case .missingInterface: 0
        case .outOfRange: 1
        case .notPageMultiple: 2
        case .notAFraction: 3
        case .ringTooLarge: 4
        case .blockTooSmall: 5
        case .poolTooLarge: 6
        case .offloadNeedsPool: 7
        case .chunksNeedPool: 8
        case .buddyGroupsIncomplete: 9
        case .filterLength: 10
        case .filterRefused: 11
        case .ringAllocationFailed: 12
        case .poolAllocationFailed: 13
        case .poolLockFailed: 14
        case .transmitRingAllocationFailed: 15
        }
    }

    @Test("the examples hold every case")
    func examplesAreComplete() {
        #expect(Set(Self.examples.map(Self.kind)) == Set(0...15))
    }
}
