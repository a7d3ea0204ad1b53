#if canImport(Glibc)
import Glibc
#endif

/// `--priority-high`: the calling thread, and so every thread it starts afterwards (a thread
/// inherits its creator's policy), runs under SCHED_FIFO.
///
/// Why: on a machine whose cores the sender, the sink and the forwarder's threads share, a
/// thread woken for a full block may wait a scheduler slice for its core; a real-time thread
/// preempts the others at once. Measured in the fwd experiment (docs/experiments.md): p99
/// latency flat out 4 to 6 ms without, 0.44 to 0.58 ms with. The threads sleep when there is no
/// work (poll, a condition, usleep after 64 yields when a TX ring is full), so they cannot starve
/// the machine, and the kernel's real-time throttling keeps 5 % of each core for the rest anyway.
/// netsniff-ng's `--prio-high` does the same.
public enum RealtimePriority {
    /// The priority used: low among real-time ones, above every normal thread.
    public static let priority: Int32 = 10

    /// Makes the calling thread SCHED_FIFO; returns the errno on failure (EPERM without root or
    /// CAP_SYS_NICE).
    public static func apply() -> Int32? {
        var parameters = sched_param()
        parameters.sched_priority = priority
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters)
        return rc == 0 ? nil : rc
    }

    /// The one-line error for a failed `apply()`.
    public static func problem(_ code: Int32) -> String {
        "--priority-high: cannot run the threads real-time (SCHED_FIFO): \(String(cString: strerror(code))) (run as root or give the program CAP_SYS_NICE, or leave the flag out)"
    }
}
