#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import WirecapLinux

/// Packet sockets need CAP_NET_RAW; elsewhere those tests are skipped with this reason.
let rootReason: Comment? = geteuid() == 0 ? nil : "needs root (CAP_NET_RAW) to open packet sockets"

/// What the descriptor `fd` refers to (its inode, and an eventfd's id), or nil when it is closed.
/// Tests run in parallel, so a closed number may already be reused: compare identities, not numbers.
func identity(of fd: Int32) -> [Substring]? {
    guard let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8) else { return nil }
    return info.split(separator: "\n").filter { $0.hasPrefix("ino:") || $0.hasPrefix("eventfd-id:") }
}

@Suite("Network interfaces")
struct NetworkInterfaceTests {
    @Test("lo: an index, up, loopback, with headers like Ethernet")
    func loopback() throws {
        let lo = try NetworkInterface(named: "lo")
        #expect(lo.index > 0)
        #expect(lo.index == Int32(bitPattern: if_nametoindex("lo")))
        #expect(lo.isUp)
        #expect(lo.linkType == .loopback)
        #expect(lo.linkType.carriesEthernetHeaders)
        #expect(!lo.isEthernet)
        #expect(lo.flags.contains(.loopback))
        #expect(lo.mtu > 0)
    }

    @Test("a missing interface is recognisable as such, and says so in one line")
    func missing() {
        let error = #expect(throws: SystemError.self) { try NetworkInterface(named: "wcnosuch0") }
        #expect(error?.isNoSuchInterface == true)
        #expect(error?.errno == .noSuchDevice)
        #expect(error?.interface == "wcnosuch0")
        let text = error?.description ?? ""
        #expect(text.contains("wcnosuch0") && text.contains("errno \(ENODEV)") && !text.contains("\n"), "\(text)")
    }
}

@Suite("System errors")
struct SystemErrorTests {
    @Test("one line: what failed, on what, strerror and the errno number")
    func description() {
        let error = SystemError(.noSuchDevice, operation: "binding the socket", interface: "eth9")
        #expect(error.description == "binding the socket on eth9 failed: \(String(cString: strerror(ENODEV))) (errno \(ENODEV))")
        let plain = SystemError(.outOfMemory, operation: "creating an eventfd")
        #expect(plain.description == "creating an eventfd failed: \(String(cString: strerror(ENOMEM))) (errno \(ENOMEM))")
        #expect(SystemError(.notPermitted, operation: "x").isMissingPrivilege)
        #expect(SystemError(.noBufferSpace, operation: "x").isBusy)
        #expect(!SystemError(.networkDown, operation: "x").isBusy)
    }
}

@Suite("EventFD")
struct EventFDTests {
    func readable(_ event: EventFD) -> Bool {
        var fd = pollfd(fd: event.descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&fd, 1, 0) == 1 && fd.revents & Int16(POLLIN) != 0
    }

    @Test("readable after a signal until a reset; resetting twice is harmless")
    func signalAndReset() throws {
        let event = try EventFD()
        #expect(event.descriptor >= 0)
        #expect(!readable(event))
        event.signal()
        event.signal()
        #expect(readable(event))
        event.reset()
        #expect(!readable(event))
        event.reset()
        #expect(!readable(event))
        #expect(fcntl(event.descriptor, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(event.descriptor, F_GETFL) & O_NONBLOCK != 0)
    }

    @Test("the descriptor is closed with the last reference")
    func closes() throws {
        var event: EventFD? = try EventFD()
        let fd = event!.descriptor
        let before = try #require(identity(of: fd))
        event = nil
        #expect(identity(of: fd) != before)
    }
}

@Suite("Packet sockets", .disabled(if: rootReason != nil, rootReason ?? ""))
struct PacketSocketTests {
    @Test("opened, configured and bound on lo, then closed with the last reference")
    func openAndClose() throws {
        let lo = try NetworkInterface(named: "lo")
        var socket: PacketSocket? = try PacketSocket(interface: "lo")
        let fd = socket!.descriptor
        let before = try #require(identity(of: fd))
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        try socket!.attachReturnFilter(0)
        try socket!.setVersion(.v3)
        try socket!.bind(interfaceIndex: lo.index, protocol: PacketSocket.allProtocols)
        let statistics = try socket!.statistics()
        #expect(statistics.drops == 0)
        socket = nil
        #expect(identity(of: fd) != before)
    }

    @Test("a receive ring is mapped, and its mapping keeps the socket open until it is unmapped")
    func ring() throws {
        let socket = try PacketSocket(interface: "lo")
        try socket.setVersion(.v3)
        try socket.setUpReceiveRing(blockSize: 1 << 16, blockCount: 2, blockTimeoutMilliseconds: 10)
        let mapping = try socket.mapRings(byteCount: 2 << 16)
        #expect(mapping.byteCount == 2 << 16)
        #expect(mapping.socket === socket)
    }

    @Test("a bind to a missing interface index fails as no such interface")
    func bindMissing() throws {
        let socket = try PacketSocket(interface: "wcnosuch0")
        let error = #expect(throws: SystemError.self) { try socket.bind(interfaceIndex: 0x7fff_fff0) }
        #expect(error?.isNoSuchInterface == true, "\(error.map { "\($0)" } ?? "")")
        #expect(error?.description.contains("on wcnosuch0") == true)
    }
}

@Suite("Network namespaces")
struct NetworkNamespaceTests {
    @Test("the current namespace is the same as itself, opened twice")
    func same() throws {
        let a = try NetworkNamespace.current()
        let b = try NetworkNamespace.current()
        #expect(a.descriptor != b.descriptor)
        #expect(a.isSame(as: b))
        #expect(a.isSame(as: try NetworkNamespace.current()))
    }

    @Test("running in the namespace the thread is in switches nothing and returns the body's value")
    func runHere() throws {
        let here = try NetworkNamespace.current()
        let value = try here.run { () throws(SystemError) -> Int32 in try NetworkInterface(named: "lo").index }
        #expect(value > 0)
    }

    @Test("an `ip netns` name that does not exist fails with ENOENT, naming its path")
    func missingName() {
        let error = #expect(throws: SystemError.self) { try NetworkNamespace(named: "wirecap-no-such-netns") }
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.description.contains("/run/netns/wirecap-no-such-netns") == true)
    }
}
