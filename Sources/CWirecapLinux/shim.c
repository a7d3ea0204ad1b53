#define _GNU_SOURCE
#ifdef __linux__
#include "CWirecapLinux.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <pwd.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <linux/virtio_net.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/capability.h>
#include <sys/syscall.h>

const void *CWirecapLinux_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

int CWirecapLinux_packet_socket(int protocol_host_order) {
    return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons((uint16_t)protocol_host_order));
}

int CWirecapLinux_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof(value));
}

int CWirecapLinux_setup_rx_ring(int fd, unsigned block_size, unsigned block_count,
                                unsigned frame_size, unsigned retire_tov_ms) {
    struct tpacket_req3 req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    req.tp_retire_blk_tov = retire_tov_ms;
    req.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
    return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req));
}

int CWirecapLinux_bind(int fd, int ifindex, int protocol_host_order) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex;
    sll.sll_protocol = htons((uint16_t)protocol_host_order);
    return bind(fd, (struct sockaddr *)&sll, sizeof(sll));
}

int CWirecapLinux_join_fanout(int fd, uint16_t group, uint16_t type, uint16_t flags) {
    uint32_t arg = (uint32_t)group | ((uint32_t)(type | flags) << 16);
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg));
}

int CWirecapLinux_fanout_group_id(int fd, uint16_t *group) {
    uint32_t arg = 0;
    socklen_t len = sizeof(arg);
    if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, &len) != 0) return -1;
    *group = (uint16_t)(arg & 0xffff);
    return 0;
}

int CWirecapLinux_set_promiscuous(int fd, int ifindex) {
    struct packet_mreq mr;
    memset(&mr, 0, sizeof(mr));
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    return setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr));
}

int CWirecapLinux_attach_ret_filter(int fd, uint32_t k) {
    struct sock_filter insn = BPF_STMT(BPF_RET | BPF_K, k);
    struct sock_fprog prog = { .len = 1, .filter = &insn };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

int CWirecapLinux_attach_filter(int fd, const struct sock_filter *instructions, unsigned short count) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)instructions };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

int CWirecapLinux_read_stats(int fd, uint64_t *packets, uint64_t *drops, uint64_t *freezes) {
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);
    memset(&st, 0, sizeof(st));
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) return -1;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    *freezes = st.tp_freeze_q_cnt;
    return 0;
}

int CWirecapLinux_read_rollover_stats(int fd, uint64_t *all, uint64_t *huge, uint64_t *failed) {
    struct tpacket_rollover_stats st;
    socklen_t len = sizeof(st);
    memset(&st, 0, sizeof(st));
    if (getsockopt(fd, SOL_PACKET, PACKET_ROLLOVER_STATS, &st, &len) != 0) return -1;
    *all = st.tp_all;
    *huge = st.tp_huge;
    *failed = st.tp_failed;
    return 0;
}

static int with_ifreq(const char *name, unsigned long request, struct ifreq *ifr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    memset(ifr, 0, sizeof(*ifr));
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, request, ifr);
    int saved = errno;
    close(s);
    errno = saved;
    return rc;
}

int CWirecapLinux_interface_flags(const char *name, unsigned *flags) {
    struct ifreq ifr;
    if (with_ifreq(name, SIOCGIFFLAGS, &ifr) != 0) return -1;
    *flags = (unsigned)(unsigned short)ifr.ifr_flags;
    return 0;
}

int CWirecapLinux_interface_hwtype(const char *name, unsigned short *arphrd) {
    struct ifreq ifr;
    if (with_ifreq(name, SIOCGIFHWADDR, &ifr) != 0) return -1;
    *arphrd = ifr.ifr_hwaddr.sa_family;
    return 0;
}

int CWirecapLinux_interface_mtu(const char *name, int *mtu) {
    struct ifreq ifr;
    if (with_ifreq(name, SIOCGIFMTU, &ifr) != 0) return -1;
    *mtu = ifr.ifr_mtu;
    return 0;
}

int CWirecapLinux_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) { errno = rc; return -1; }
    return 0;
}

int CWirecapLinux_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < capacity; cpu++)
        if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    return n;
}

int CWirecapLinux_current_cpu(void) { return sched_getcpu(); }

int CWirecapLinux_make_current_thread_batch(void) {
    // A real-time policy inherited from the thread that started this one (`--priority-high`)
    // is kept: only a normal thread becomes a batch one.
    if (sched_getscheduler(0) != SCHED_OTHER) return 0;
    struct sched_param param = {0};
    return sched_setscheduler(0, SCHED_BATCH, &param);
}

int CWirecapLinux_setns_net(int fd) { return setns(fd, CLONE_NEWNET); }

int CWirecapLinux_unshare_net(void) { return unshare(CLONE_NEWNET); }

int CWirecapLinux_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int CWirecapLinux_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

int CWirecapLinux_eventfd_reset(int fd) {
    uint64_t value = 0;
    if (read(fd, &value, sizeof(value)) == sizeof(value)) return 0;
    return errno == EAGAIN ? 0 : -1;
}

int CWirecapLinux_block_stop_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

int CWirecapLinux_wait_stop_signal(int timeout_ms) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000L };
    int sig = sigtimedwait(&set, NULL, &ts);
    return sig < 0 ? 0 : sig;
}

// One signalfd for the stop signals, made on first use: poll(2) can wait on it beside another
// descriptor, which sigtimedwait cannot.
static int stop_signal_fd = -1;
static pthread_once_t stop_signal_fd_once = PTHREAD_ONCE_INIT;
static void make_stop_signal_fd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    stop_signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int CWirecapLinux_wait_stop_signal_or_readable(int fd, int timeout_ms) {
    if (fd < 0) return CWirecapLinux_wait_stop_signal(timeout_ms);
    pthread_once(&stop_signal_fd_once, make_stop_signal_fd);
    if (stop_signal_fd < 0) return CWirecapLinux_wait_stop_signal(timeout_ms < 100 ? timeout_ms : 100);
    struct pollfd fds[2] = { { .fd = stop_signal_fd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
    if (poll(fds, 2, timeout_ms) <= 0) return 0;
    if (fds[0].revents & POLLIN) {
        struct signalfd_siginfo info;
        if (read(stop_signal_fd, &info, sizeof info) == (ssize_t)sizeof info) return (int)info.ssi_signo;
    }
    return (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) ? -1 : 0;
}

int CWirecapLinux_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int CWirecapLinux_epoll_add(int epfd, int fd, int edge_triggered, unsigned tag) {
    struct epoll_event event = { .events = EPOLLIN | (edge_triggered ? EPOLLET : 0), .data.u32 = tag };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int CWirecapLinux_epoll_add_exclusive(int epfd, int fd, unsigned tag) {
    struct epoll_event event = { .events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE, .data.u32 = tag };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int CWirecapLinux_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

double CWirecapLinux_thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int CWirecapLinux_drop_effective_capability(int cap) {
    if (cap < 0 || cap >= 64) {
        errno = EINVAL;
        return -1;
    }
    // pid 0: the calling thread, whose sets capset changes (not the whole process).
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    data[cap / 32].effective &= ~(1u << (cap % 32));
    return (int)syscall(SYS_capset, &header, data);
}

int CWirecapLinux_keep_capabilities(uint64_t keep) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        uint32_t mask = (uint32_t)(keep >> (32 * i));
        data[i].effective &= mask;
        data[i].permitted &= mask;
        data[i].inheritable = 0;
    }
    // Ambient capabilities would survive an exec; none are wanted.
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    return (int)syscall(SYS_capset, &header, data);
}

uint64_t CWirecapLinux_effective_capabilities(void) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return UINT64_MAX;
    return (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
}

int CWirecapLinux_switch_user(const char *name, unsigned *uid_out) {
    struct passwd entry, *found = NULL;
    char buffer[4096];
    int error = getpwnam_r(name, &entry, buffer, sizeof buffer, &found);
    if (error != 0) return -error;
    if (found == NULL) return -ENOENT;
    // Groups first, while still root: the supplementary groups of the user, then its group,
    // then the user (which clears every capability, in every thread: glibc's setxid broadcast).
    if (initgroups(entry.pw_name, entry.pw_gid) != 0) return -errno;
    if (setgid(entry.pw_gid) != 0) return -errno;
    if (setuid(entry.pw_uid) != 0) return -errno;
    // No way back.
    if (entry.pw_uid != 0 && setuid(0) == 0) return -EPERM;
    if (uid_out) *uid_out = entry.pw_uid;
    return 0;
}

int CWirecapLinux_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == 0) return 0;
    size_t length = strlen(path);
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || length >= sizeof address.sun_path) {
        errno = EINVAL;
        return -1;
    }
    memcpy(address.sun_path, path, length);
    // '@': a socket in the abstract namespace, whose name starts with a NUL byte.
    if (path[0] == '@') address.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&address,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length));
    int saved = errno;
    close(fd);
    errno = saved;
    return sent < 0 ? -1 : 1;
}

uint64_t CWirecapLinux_memlock_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
    return (uint64_t)limit.rlim_cur;
}

double CWirecapLinux_process_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

uint64_t CWirecapLinux_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t CWirecapLinux_monotonic_coarse_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define WIRECAP_MAX_BATCH 1024
int CWirecapLinux_send_batch(int fd, const uint8_t *frames, const uint32_t *lengths,
                             unsigned count) {
    struct mmsghdr msgs[WIRECAP_MAX_BATCH];
    struct iovec iovs[WIRECAP_MAX_BATCH];
    if (count > WIRECAP_MAX_BATCH) count = WIRECAP_MAX_BATCH;
    size_t offset = 0;
    for (unsigned i = 0; i < count; i++) {
        iovs[i].iov_base = (void *)(frames + offset);
        iovs[i].iov_len = lengths[i];
        offset += lengths[i];
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return sendmmsg(fd, msgs, count, 0);
}

_Static_assert(sizeof(struct virtio_net_hdr) == CWirecapLinux_TX_VNET_SIZE, "virtio_net_hdr size");

int CWirecapLinux_setup_tx_ring(int fd, unsigned block_size, unsigned block_count, unsigned frame_size) {
    struct tpacket_req req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    return setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req));
}

long CWirecapLinux_tx_kick(int fd) { return (long)send(fd, NULL, 0, MSG_DONTWAIT); }

int CWirecapLinux_sleep_until_ns(uint64_t deadline_ns) {
    struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000ull),
                           .tv_nsec = (long)(deadline_ns % 1000000000ull) };
    int rc;
    do { rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); } while (rc == EINTR);
    return rc == 0 ? 0 : -1;
}

int CWirecapLinux_set_timer_slack_ns(unsigned long ns) { return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0); }
#endif

int CWirecapLinux_read_link_counters(int ifindex, CWirecapLinux_link_counters *out) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    struct {
        struct nlmsghdr header;
        struct ifinfomsg info;
    } request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request.header.nlmsg_type = RTM_GETLINK;
    request.header.nlmsg_flags = NLM_F_REQUEST;
    request.header.nlmsg_seq = 1;
    request.info.ifi_family = AF_UNSPEC;
    request.info.ifi_index = ifindex;
    if (send(fd, &request, request.header.nlmsg_len, 0) < 0) { int e = errno; close(fd); errno = e; return -1; }
    // One RTM_NEWLINK reply (or an error); 32 KiB holds every attribute of one link.
    static _Thread_local char buffer[32768];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    int saved = errno;
    close(fd);
    if (n < 0) { errno = saved; return -1; }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr *error = NLMSG_DATA(h);
            errno = error->error ? -error->error : EPROTO;
            return -1;
        }
        if (h->nlmsg_type != RTM_NEWLINK) continue;
        struct ifinfomsg *info = NLMSG_DATA(h);
        int length = (int)IFLA_PAYLOAD(h);
        for (struct rtattr *a = IFLA_RTA(info); RTA_OK(a, length); a = RTA_NEXT(a, length)) {
            if (a->rta_type != IFLA_STATS64 || RTA_PAYLOAD(a) < sizeof(struct rtnl_link_stats64)) continue;
            struct rtnl_link_stats64 stats;
            memcpy(&stats, RTA_DATA(a), sizeof stats);
            out->rx_packets = stats.rx_packets;
            out->rx_dropped = stats.rx_dropped;
            out->rx_missed_errors = stats.rx_missed_errors;
            out->rx_fifo_errors = stats.rx_fifo_errors;
            return 0;
        }
    }
    errno = ENODATA;
    return -1;
}
