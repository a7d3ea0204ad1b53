import Testing
import WirecapEngine

@Suite("Capture configuration")
struct ConfigurationTests {
    func message(_ configure: (inout CaptureConfiguration) -> Void) -> String? {
        var configuration = CaptureConfiguration(interface: "eth0")
        configure(&configuration)
        do {
            try configuration.validate()
            return nil
        } catch {
            return error.description
        }
    }

    @Test("the defaults are valid and hold a full default snap length")
    func defaults() throws {
        let configuration = CaptureConfiguration(interface: "eth0")
        try configuration.validate()
        #expect(configuration.ring.blockSize >= CaptureConfiguration.minimumBlockSize(snapLength: configuration.snapLength))
    }

    @Test("nonsense sizes are refused with a message naming the option and a fix")
    func nonsense() {
        #expect(message { $0.queues = 0 }?.contains("--queues 0 is out of range") == true)
        #expect(message { $0.queues = 100_000 }?.contains("--queues") == true)
        #expect(message { $0.ring.blockSize = 5000 }?.contains("--block-size 5000 is not a positive multiple of the page size") == true)
        #expect(message { $0.ring.blockSize = 0 }?.contains("--block-size 0") == true)
        #expect(message { $0.ring.blockCount = 0 }?.contains("--blocks 0") == true)
        #expect(message { $0.ring.blockTimeoutMilliseconds = -1 }?.contains("--block-timeout -1") == true)
        #expect(message { $0.snapLength = 0 }?.contains("-s 0 is out of range") == true)
        #expect(message { $0.interface = "" }?.contains("no interface") == true)
    }

    @Test("a block smaller than one snap-length packet is refused, with a size that works")
    func blockSmallerThanSnapLength() throws {
        let text = try #require(message { $0.ring.blockSize = 8192 })
        #expect(text.contains("smaller than one packet of snap length 262144"))
        #expect(text.contains("raise --block-size to"))
        // The suggested size must itself be accepted.
        let suggested = try #require(Int(text.split(separator: " ").drop { $0 != "to" }.dropFirst().first ?? ""))
        #expect(message { $0.ring.blockSize = suggested } == nil)
        // And a small snap length makes small blocks fine.
        #expect(message { $0.ring.blockSize = 4096; $0.snapLength = 1500 } == nil)
    }

    @Test("a missing interface is named as such")
    func missingInterface() {
        #expect(throws: CaptureError.noSuchInterface("wirecap-none0")) {
            try CaptureEngine(configuration: CaptureConfiguration(interface: "wirecap-none0"))
        }
    }
}
