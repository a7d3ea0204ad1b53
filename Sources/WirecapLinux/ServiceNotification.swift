import CWirecapLinux

/// systemd's notification protocol (`Type=notify`), spoken directly: one datagram to the socket
/// in `$NOTIFY_SOCKET`, no libsystemd. Outside such a unit there is no socket and nothing is sent.
public enum ServiceNotification {
    /// Ready: every ring is open and the group complete (`STATUS` says what a person sees).
    public static func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// A stop has begun (a signal, -c, --duration): draining what the kernel accepted.
    public static func stopping() { send("STOPPING=1") }

    /// A failure to reach systemd changes nothing for the capture, so it is not reported.
    static func send(_ state: String) { _ = CWirecapLinux_sd_notify(state) }
}
