import Foundation
import Testing
import WirecapSandbox

extension SandboxSuites {
    /// The getting-started article's program captures what is sent.
    @Suite("Getting started: first-capture in a sandbox")
    struct GettingStartedTests {
        @Test("first-capture counts every frame sent in the sandbox", .timeLimit(.minutes(1)))
        func firstCaptureRuns() throws {
            let binary = URL(fileURLWithPath: Tool.executable).deletingLastPathComponent().appendingPathComponent("first-capture").path
            try Sandbox.with(queues: 4) { sandbox in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
                process.arguments = ["netns", "exec", sandbox.receiver.name, binary, sandbox.receiverInterface, "3"]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                // The engine is up well within a second (nothing is printed until the end).
                Thread.sleep(forTimeInterval: 1.0)
                let frames = SequencedFrame(flows: 64, size: 64)
                let sender = try sandbox.sender.run { try FrameSender(interface: sandbox.senderInterface) }
                let report = sender.sendSequenced(frames, count: 2000)
                process.waitUntilExit()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let counts = text.split(separator: "\n").compactMap { line in
                    line.split(separator: " ").dropFirst(2).first.flatMap { Int($0) }
                }
                #expect(process.terminationStatus == 0)
                #expect(counts.count == 4, "one line per queue: \(text)")
                #expect(counts.reduce(0, +) == report.sent, "\(text)")
            }
        }
    }
}

/// The getting-started article (WirecapEngine.docc) shows the same text as Examples/FirstCapture,
/// which the package builds: the article cannot stop compiling unnoticed.
@Suite("Getting started: the article")
struct GettingStartedArticleTests {
    static let root = Tool.packageRoot

        @Test("the article shows exactly the example's code")
        func articleMatchesExample() throws {
            let example = try String(contentsOf: Self.root.appendingPathComponent("Examples/FirstCapture/main.swift"), encoding: .utf8)
            let article = try String(
                contentsOf: Self.root.appendingPathComponent("Sources/WirecapEngine/WirecapEngine.docc/GettingStarted.md"), encoding: .utf8)
            let start = try #require(article.range(of: "```swift\n"))
            let end = try #require(article.range(of: "```", range: start.upperBound..<article.endIndex))
            #expect(String(article[start.upperBound..<end.lowerBound]) == example)
            #expect(example.split(separator: "\n").count <= 25, "a first capture fits on a screen")
        }

}
