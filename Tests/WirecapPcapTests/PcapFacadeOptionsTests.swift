import Foundation
import Testing
import WirecapEngine
import WirecapPcap

/// `LiveOptions.validate()` is the engine's validation of the configuration `openLive` would
/// open, in the facade's words: the same values refused, for the same reason.
@Suite("pcap facade: options")
struct PcapFacadeOptionsTests {
    static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    @Test("the defaults are valid, and open the geometry the facade documents")
    func defaults() throws {
        let options = PcapHandle.LiveOptions()
        try options.validate()
        try options.validate(device: "eth0")
        let configuration = options.captureConfiguration(device: "eth0")
        #expect(configuration.interface == "eth0" && configuration.queues == 1 && configuration.pool?.chunks == 64)
        #expect(configuration.ring.blockSize == 1 << 19 && configuration.ring.blockCount == 8)
        #expect(configuration.snapLength == 262_144 && configuration.offload == nil)
    }

    @Test("LiveOptions and the engine refuse a table of bad values with the same error")
    func oneValidation() throws {
        let page = Self.page
        let needed = CaptureConfiguration.minimumBlockSize(snapLength: 262_144)
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * page
        let table: [(change: (inout PcapHandle.LiveOptions) -> Void, expected: ConfigurationError, phrases: [String])] = [
            ({ $0.queues = 0 }, .outOfRange(.queues, value: 0, allowed: 1...256), ["LiveOptions.queues 0 is out of range", "1 to 256"]),
            ({ $0.queues = 300 }, .outOfRange(.queues, value: 300, allowed: 1...256), ["LiveOptions.queues 300"]),
            ({ $0.blockSize = page + 1 }, .notPageMultiple(.blockSize, value: page + 1, page: page, suggestion: 2 * page),
             ["LiveOptions.blockSize \(page + 1)", "page size", "try \(2 * page)"]),
            ({ $0.blockSize = 0 }, .notPageMultiple(.blockSize, value: 0, page: page, suggestion: page), ["LiveOptions.blockSize 0"]),
            ({ $0.blockSize = 4096 },
             .blockTooSmall(blockSize: 4096, needed: needed, snapLength: 262_144, suggestion: (needed + page - 1) / page * page),
             ["LiveOptions.blockSize 4096 is smaller than one packet of snap length 262144", "lower LiveOptions.snapLength"]),
            ({ $0.snapLength = 0 }, .outOfRange(.snapLength, value: 0, allowed: 1...262_144), ["LiveOptions.snapLength 0"]),
            ({ $0.snapLength = 1 << 40 }, .outOfRange(.snapLength, value: 1 << 40, allowed: 1...262_144), ["LiveOptions.snapLength"]),
            ({ $0.poolChunks = 0 }, .outOfRange(.poolChunks, value: 0, allowed: 1...(1 << 20)), ["LiveOptions.poolChunks 0"]),
            ({ $0.poolChunks = 1 << 20 },
             .poolTooLarge(chunks: 1 << 20, blockSize: 1 << 19, queues: 1, bytes: 1 << 39, physical: physical),
             ["LiveOptions.poolChunks 1048576 x LiveOptions.blockSize 524288 x LiveOptions.queues 1", "lower LiveOptions.poolChunks"]),
            ({ $0.offloadThreshold = 1.5 }, .notAFraction(.offloadThreshold, value: 1.5), ["LiveOptions.offloadThreshold 1.5", "0 to 1"]),
            ({ $0.offloadThreshold = -0.1 }, .notAFraction(.offloadThreshold, value: -0.1), ["LiveOptions.offloadThreshold -0.1"]),
            ({ $0.snapLength = 1500; $0.blockSize = 4096; $0.bufferSize = 1 << 33 },
             .outOfRange(.blockCount, value: 1 << 21, allowed: 1...(1 << 20)), ["LiveOptions.bufferSize / blockSize", "2097152"]),
        ]
        for row in table {
            var options = PcapHandle.LiveOptions()
            row.change(&options)
            #expect(throws: CaptureError.configuration(row.expected)) { try options.captureConfiguration(device: "eth0").validate() }
            let error = try #require(#expect(throws: PcapError.self) { try options.validate() })
            #expect(error == PcapError(engine: .configuration(row.expected)))
            #expect(error.underlying == .configuration(row.expected))
            for phrase in row.phrases { #expect(error.message.contains(phrase), "\(error.message)") }
        }
    }

    @Test("the facade's own options are checked by the facade, in its words")
    func ownChecks() throws {
        var options = PcapHandle.LiveOptions()
        options.timeoutMilliseconds = -1
        let timeout = try #require(#expect(throws: PcapError.self) { try options.validate() })
        #expect(timeout.message.hasPrefix("LiveOptions.timeoutMilliseconds -1") && timeout.underlying == nil)
        options = PcapHandle.LiveOptions()
        options.bufferSize = 0
        let buffer = try #require(#expect(throws: PcapError.self) { try options.validate() })
        #expect(buffer.message.hasPrefix("LiveOptions.bufferSize 0") && buffer.underlying == nil)
        let device = try #require(#expect(throws: PcapError.self) { try PcapHandle.LiveOptions().validate(device: "") })
        #expect(device.underlying == .configuration(.missingInterface) && device.message.hasPrefix("device is empty"))
    }

    @Test("the facade's text names LiveOptions, never a flag or the engine's property paths")
    func facadeTerms() {
        for error in Self.examples {
            let text = PcapError(engine: .configuration(error)).message
            #expect(!text.contains("--") && !text.contains("\n"), "\(text)")
            for engineName in ["ring.", "pool.", "offload."] { #expect(!text.contains(engineName), "\(text)") }
        }
        for parameter: ConfigurationError.Parameter in [.queues, .blockSize, .snapLength, .poolChunks, .offloadThreshold, .filter] {
            #expect(parameter.liveOptionName == "LiveOptions.\(parameter.rawValue)")
        }
        // Errors that are not about configuration keep the engine's words, and the value.
        let missing = PcapError(engine: .noSuchInterface("eth9"))
        #expect(missing.message == CaptureError.noSuchInterface("eth9").description && missing.underlying == .noSuchInterface("eth9"))
    }

    /// A refusal of each kind the engine gives, as the facade passes them on.
    static let examples: [ConfigurationError] = [
        .missingInterface,
        .outOfRange(.queues, value: 0, allowed: 1...256),
        .outOfRange(.blockCount, value: 0, allowed: 1...(1 << 20)),
        .outOfRange(.blockTimeout, value: -1, allowed: 0...60_000),
        .outOfRange(.snapLength, value: 0, allowed: 1...262_144),
        .outOfRange(.poolChunks, value: 0, allowed: 1...(1 << 20)),
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
        .poolAllocationFailed(queue: 0, chunks: 64, chunkSize: 1 << 20),
        .poolLockFailed(queue: 0, bytes: 1 << 26, errno: EPERM, limit: 8 << 20),
    ]
}
