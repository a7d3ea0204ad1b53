import Testing
import WirecapEngine

/// The offload decision under scripted backlogs: no clock, no threads.
@Suite("Buddy offloading decisions")
struct OffloadPolicyTests {
    /// A group of `queues` members with scripted backlogs and the policy's hysteresis state.
    struct Script {
        let policy: OffloadPolicy
        var backlogs: [Int]
        var offloading: [Bool]
        let members: [Int]

        init(queues: Int, threshold: Double, capacity: Int) {
            policy = OffloadPolicy(threshold: threshold, capacity: capacity)
            backlogs = Array(repeating: 0, count: queues)
            offloading = Array(repeating: false, count: queues)
            members = Array(0..<queues)
        }

        mutating func target(of owner: Int) -> Int {
            members.withUnsafeBufferPointer { m in
                backlogs.withUnsafeBufferPointer { b in
                    offloading.withUnsafeMutableBufferPointer { o in policy.target(owner: owner, members: m, backlogs: b, offloading: o) }
                }
            }
        }
    }

    @Test("below the threshold a queue keeps its chunks")
    func belowThreshold() {
        var s = Script(queues: 4, threshold: 0.5, capacity: 64)
        s.backlogs = [32, 0, 0, 0]  // exactly T x capacity is not over it
        #expect(s.target(of: 0) == 0)
        #expect(s.offloading == [false, false, false, false])
    }

    @Test("over the threshold the chunk goes to the least-loaded buddy below it")
    func leastLoaded() {
        var s = Script(queues: 4, threshold: 0.5, capacity: 64)
        s.backlogs = [40, 20, 5, 12]
        #expect(s.target(of: 0) == 2)
        s.backlogs = [40, 20, 31, 12]
        #expect(s.target(of: 0) == 3)
    }

    @Test("nothing goes to a buddy over the threshold; with none below it the chunk stays")
    func noBuddyOverThreshold() {
        var s = Script(queues: 3, threshold: 0.5, capacity: 64)
        s.backlogs = [50, 33, 40]
        #expect(s.target(of: 0) == 0)
        s.backlogs = [50, 32, 40]  // 32 is the mark itself: not below it
        #expect(s.target(of: 0) == 0)
        s.backlogs = [50, 31, 40]
        #expect(s.target(of: 0) == 1)
    }

    @Test("hysteresis: offloading starts over the high mark and stops only at the low mark")
    func hysteresis() {
        var s = Script(queues: 2, threshold: 0.5, capacity: 64)  // high 32, low 16
        var decisions: [Int] = []
        // The backlog climbs over the mark, then hovers just under it, then drains.
        for backlog in [30, 33, 31, 30, 33, 29, 20, 17, 16, 15, 31, 33] {
            s.backlogs = [backlog, 0]
            decisions.append(s.target(of: 0))
        }
        #expect(decisions == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1])
        // Without hysteresis it would flip at every crossing: count the switches.
        let switches = zip(decisions, decisions.dropFirst()).filter { $0 != $1 }.count
        #expect(switches == 3)
    }

    @Test("no ping-pong: a queue that is offloading is never a target")
    func noPingPong() {
        var s = Script(queues: 2, threshold: 0.5, capacity: 64)
        s.backlogs = [40, 10]
        #expect(s.target(of: 0) == 1)  // 0 offloads to 1
        s.backlogs = [25, 40]  // 1 fills up; 0 is under the high mark but still offloading
        #expect(s.target(of: 1) == 1, "1 may not send back to 0 while 0 is offloading")
        #expect(s.target(of: 0) == 0, "and 0 may not send to 1, which is over the mark")
        s.backlogs = [10, 40]  // 0 has drained to the low mark: it is a target again
        #expect(s.target(of: 1) == 0)
    }

    @Test("a buddy that went quiet while offloading becomes a target again once drained")
    func quietBuddy() {
        var s = Script(queues: 2, threshold: 0.5, capacity: 64)
        s.backlogs = [0, 40]
        #expect(s.target(of: 1) == 0)  // 1 starts offloading
        s.backlogs = [40, 3]  // 1's traffic stopped and its worker drained it
        #expect(s.target(of: 0) == 1)
    }

    @Test("T = 0 never offloads (no buddy is below 0); T = 1 only past a full queue")
    func extremes() {
        var zero = Script(queues: 2, threshold: 0, capacity: 8)
        zero.backlogs = [5, 0]
        #expect(zero.target(of: 0) == 0)
        var one = Script(queues: 2, threshold: 1, capacity: 8)
        one.backlogs = [8, 0]
        #expect(one.target(of: 0) == 0)
        one.backlogs = [9, 0]
        #expect(one.target(of: 0) == 1)
    }

    @Test("the group hands offloaded chunks to the buddy and counts them for their owner")
    func groupCounts() throws {
        let group = BuddyGroup(members: [0, 1], queueCount: 2, capacities: [4, 4], capacity: 4, threshold: 0.5)
        var targets: [Int] = []
        for i in 0..<6 { targets.append(group.push(FilledChunk(index: Int32(i), owner: 0, packets: 10, sequence: UInt64(i))).target) }
        // High mark 2: the first three stay (backlog 0, 1, 2 at decision time), then queue 0
        // offloads until its buddy reaches the mark too, and the last chunk stays local.
        #expect(targets == [0, 0, 0, 1, 1, 0])
        while let chunk = group.backlog(of: 1) > 0 ? group.pop(for: 1) : nil { group.processed(chunk, by: 1) }
        let owner = group.snapshot(of: 0)
        let buddy = group.snapshot(of: 1)
        #expect(owner.offloadedOut == 2 && buddy.offloadedIn == 2)
        #expect(owner.captured == 60 && owner.processed == 20 && owner.queued == 40, "counted for the owner, wherever processed")
        #expect(buddy.captured == 0 && buddy.processed == 0 && buddy.chunksProcessed == 2)
    }
}
