/*
 * bench_net.c: the bench's own sockets: an echo server (a forked child with
 * one epoll loop), the round-trip client, the new-streams client (one epoll
 * loop with many connections in flight)
 * and readiness probes. Everything is 127.0.0.1, blocking clients with
 * timeouts, bounded in count and time. It knows nothing about the paths
 * being measured: it is given a port.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BENCH_MSG_LEN 64

static struct sockaddr_in bench_loopback(uint16_t port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int bench_port_pick(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = bench_loopback(0);
    socklen_t sl = sizeof(sa);
    int err = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        err = -errno;
    close(fd);
    *port = ntohs(sa.sin_port);
    return err;
}

/* A blocking client socket with send/receive timeouts (connect obeys the send
 * timeout on Linux). Returns the fd or -errno. */
/* ---- a preamble before every measured connection (a ClientHello for
 * warren-lb's and HAProxy's sni modes): sent first, its echo read back ---- */

static uint8_t bench_preamble[512];
static size_t bench_preamble_len;

void bench_net_set_preamble(const uint8_t *p, size_t n)
{
    if (n > sizeof(bench_preamble))
        n = 0;
    if (n > 0)
        memcpy(bench_preamble, p, n);
    bench_preamble_len = n;
}

static int bench_dial(uint16_t port, uint32_t timeout_ms, bool nodelay)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct sockaddr_in sa = bench_loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static bool bench_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool bench_read_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool bench_wait_port(uint16_t port, uint32_t timeout_ms)
{
    uint64_t end = bench_now_us() + (uint64_t)timeout_ms * 1000;
    while (!bench_interrupted()) {
        int fd = bench_dial(port, 500, false);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (bench_now_us() >= end)
            return false;
        bench_sleep_ms(20);
    }
    return false;
}

bool bench_probe_echo(uint16_t port, uint32_t timeout_ms)
{
    int fd = bench_dial(port, timeout_ms, true);
    if (fd < 0)
        return false;
    uint8_t b = 'p';
    bool ok = bench_write_all(fd, &b, 1) && bench_read_all(fd, &b, 1) && b == 'p';
    close(fd);
    return ok;
}

bool bench_wait_echo(uint16_t port, uint32_t timeout_ms)
{
    uint64_t end = bench_now_us() + (uint64_t)timeout_ms * 1000;
    while (!bench_interrupted()) {
        if (bench_probe_echo(port, 1000))
            return true;
        if (bench_now_us() >= end)
            return false;
        bench_sleep_ms(50);
    }
    return false;
}

/* ---- echo server (child process) ---- */

/* Writes back everything; a short write (the peer does not read) waits for
 * the socket to drain, bounded, since the clients here send little. */
static void bench_echo_conn(int ep, int fd, bool discard)
{
    static uint8_t buf[262144];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = recv(fd, buf, discard ? sizeof(buf) : 65536, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            return;
        }
        if (discard)
            continue;
        size_t off = 0;
        for (int tries = 0; off < (size_t)n && tries < 1000; tries++) {
            ssize_t w = send(fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EAGAIN) {
                bench_sleep_ms(1);
            } else {
                break;
            }
        }
        if (off < (size_t)n) {
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            return;
        }
    }
}

__attribute__((noreturn)) static void bench_echo_main(int lfd, bool discard)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        _exit(1);
    struct epoll_event evs[256];
    /* Runs until SIGTERM (default action) or the bench dies (PDEATHSIG). */
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR)
            _exit(1);
        if (getppid() == 1)
            _exit(0);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != lfd) {
                bench_echo_conn(ep, fd, discard);
                continue;
            }
            for (int k = 0; k < 256; k++) {
                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0)
                    break;
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0)
                    close(c);
            }
        }
    }
}

static pid_t bench_server_start(uint16_t *port, bool discard)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        return -1;
    struct sockaddr_in sa = bench_loopback(0);
    socklen_t sl = sizeof(sa);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        bench_err("echo server: %s", strerror(errno));
        close(lfd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        bench_echo_main(lfd, discard);
    }
    close(lfd);
    if (pid < 0)
        return -1;
    bench_proc_register(pid);
    return pid;
}

pid_t bench_echo_start(uint16_t *port)
{
    return bench_server_start(port, false);
}

pid_t bench_discard_start(uint16_t *port)
{
    return bench_server_start(port, true);
}

/* ---- bulk with our own client (for paths iperf3 cannot take: sni mode) ---- */

int bench_bulk_run(uint16_t port, uint32_t streams, double secs, struct bench_bulk *out)
{
    memset(out, 0, sizeof(*out));
    if (streams == 0 || streams > 64)
        return -EINVAL;
    int fds[64];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    static uint8_t chunk[262144];
    memset(chunk, 'b', sizeof(chunk));
    int err = 0;
    uint32_t open_n = 0;
    for (uint32_t i = 0; i < streams; i++) {
        int fd = bench_dial(port, 2000, false);
        if (fd < 0) {
            err = fd;
            break;
        }
        if (bench_preamble_len > 0 && !bench_write_all(fd, bench_preamble, bench_preamble_len)) {
            err = errno ? -errno : -EPIPE;
            close(fd);
            break;
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[open_n++] = fd;
    }
    uint64_t t0 = bench_now_us(), end = t0 + (uint64_t)(secs * 1e6);
    uint64_t bytes = 0;
    struct epoll_event evs[64];
    for (uint64_t round = 0; err == 0 && round < 1000000000u; round++) {
        if (bench_now_us() >= end || bench_interrupted())
            break;
        int n = epoll_wait(ep, evs, 64, 100);
        for (int k = 0; k < n; k++) {
            ssize_t w = send(fds[evs[k].data.u32], chunk, sizeof(chunk), MSG_NOSIGNAL);
            if (w > 0)
                bytes += (uint64_t)w;
            else if (w < 0 && errno != EAGAIN)
                err = -errno;
        }
    }
    double s = (double)(bench_now_us() - t0) / 1e6;
    for (uint32_t i = 0; i < open_n; i++)
        close(fds[i]);
    close(ep);
    out->bytes = (double)bytes;
    out->bits_per_s = s > 0 ? (double)bytes * 8 / s : 0;
    return err;
}

/* ---- round trips ---- */

static int bench_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int bench_rtt_run(uint16_t port, uint32_t n, uint32_t warmup, uint32_t deadline_ms,
                  struct bench_rtt *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t *ns = calloc(n ? n : 1, sizeof(*ns));
    if (ns == NULL)
        return -ENOMEM;
    int fd = bench_dial(port, 2000, true);
    if (fd < 0) {
        free(ns);
        return fd;
    }
    uint8_t msg[BENCH_MSG_LEN], back[BENCH_MSG_LEN];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)('a' + i % 26);
    if (bench_preamble_len > 0) {
        uint8_t echo[sizeof(bench_preamble)];
        if (!bench_write_all(fd, bench_preamble, bench_preamble_len) ||
            !bench_read_all(fd, echo, bench_preamble_len)) {
            int e = errno ? -errno : -EPIPE;
            close(fd);
            free(ns);
            return e;
        }
    }
    uint64_t end = bench_now_us() + (uint64_t)deadline_ms * 1000;
    uint32_t got = 0;
    int err = 0;
    for (uint32_t i = 0; i < warmup + n; i++) {
        if (bench_interrupted()) {
            err = -EINTR;
            break;
        }
        if ((i & 255) == 0 && bench_now_us() >= end) {
            err = -ETIMEDOUT;
            break;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (!bench_write_all(fd, msg, sizeof(msg)) || !bench_read_all(fd, back, sizeof(back))) {
            err = errno ? -errno : -EPIPE;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (memcmp(msg, back, sizeof(msg)) != 0) {
            err = -EBADMSG;
            break;
        }
        if (i >= warmup) {
            int64_t d = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
            ns[got++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
    }
    close(fd);
    if (got > 0) {
        qsort(ns, got, sizeof(*ns), bench_cmp_u32);
        double sum = 0;
        for (uint32_t i = 0; i < got; i++)
            sum += ns[i];
        out->n = got;
        out->p50_us = ns[(got - 1) / 2] / 1000.0;
        out->p99_us = ns[(uint32_t)((got - 1) * 0.99)] / 1000.0;
        out->mean_us = sum / got / 1000.0;
    }
    free(ns);
    /* A run cut short still reports what it measured, but says so. */
    return got == n ? 0 : (err ? err : -EIO);
}

/* ---- new streams per second ---- */

/*
 * One thread, one epoll set, <conns> connections in flight: each slot loops
 * non-blocking connect -> write 1 byte -> read the echo -> close. Blocking
 * client threads spend the 2 vCPUs on context switches instead of on the
 * relay being measured (the direct path topped out at 14.7k/s that way).
 */
struct bench_churn_slot {
    int fd;
    bool sent;
    size_t got; /* bytes of the echo read so far */
    uint64_t started_us;
};

static int bench_churn_open(int ep, struct bench_churn_slot *sl, uint32_t idx, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The client closes first, so each connection leaves a TIME_WAIT on the
     * client's side, and Linux reuses such a port for the same destination
     * only a second later: from one source address that caps any path at
     * ~14k connections/s (half of the ephemeral range per second). Spreading
     * the sources over 127.0.0.2-127.0.0.251 takes the client out of the
     * figure; the relays' own connections are unchanged. */
    static uint32_t bench_churn_src;
    struct sockaddr_in src = bench_loopback(0);
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (bench_churn_src++ % 250));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct sockaddr_in sa = bench_loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    sl->fd = fd;
    sl->sent = false;
    sl->got = 0;
    sl->started_us = bench_now_us();
    return 0;
}

int bench_streams_run(uint16_t port, uint32_t conns, double secs, struct bench_streams *out)
{
    memset(out, 0, sizeof(*out));
    if (conns == 0 || conns > 1024)
        return -EINVAL;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    struct bench_churn_slot *sl = calloc(conns, sizeof(*sl));
    if (sl == NULL) {
        close(ep);
        return -ENOMEM;
    }
    uint64_t t0 = bench_now_us();
    uint64_t end = t0 + (uint64_t)(secs * 1e6);
    int err = 0;
    for (uint32_t i = 0; i < conns; i++) {
        sl[i].fd = -1;
        if (bench_churn_open(ep, &sl[i], i, port) != 0)
            out->failed++;
    }
    struct epoll_event evs[256];
    /* Bounded by time; the count bound is a backstop far above any rate. */
    for (uint64_t round = 0; round < 100000000u; round++) {
        uint64_t now = bench_now_us();
        if (now >= end || bench_interrupted())
            break;
        if (out->failed > 1000 && out->ok == 0) {
            err = -EIO; /* the path is down: do not spin */
            break;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR) {
            err = -errno;
            break;
        }
        for (int k = 0; k < n; k++) {
            uint32_t i = evs[k].data.u32;
            struct bench_churn_slot *c = &sl[i];
            bool done = false, failed = (evs[k].events & (EPOLLERR | EPOLLHUP)) != 0;
            /* One byte, or the preamble (small enough for one send). */
            const uint8_t one = 's';
            const uint8_t *out_p = bench_preamble_len ? bench_preamble : &one;
            size_t out_n = bench_preamble_len ? bench_preamble_len : 1;
            if (!failed && !c->sent && (evs[k].events & EPOLLOUT)) {
                if (send(c->fd, out_p, out_n, MSG_NOSIGNAL) == (ssize_t)out_n) {
                    c->sent = true;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                } else {
                    failed = true;
                }
            } else if (!failed && c->sent && (evs[k].events & EPOLLIN)) {
                uint8_t b[sizeof(bench_preamble)];
                ssize_t r = recv(c->fd, b, out_n - c->got, 0);
                if (r > 0)
                    c->got += (size_t)r;
                if (c->got == out_n)
                    done = true;
                else if (r == 0 || (r < 0 && errno != EAGAIN))
                    failed = true;
            }
            if (!done && !failed && bench_now_us() - c->started_us > 2000000)
                failed = true; /* a stuck connection counts as failed */
            if (done || failed) {
                out->ok += done;
                out->failed += failed;
                close(c->fd); /* also removes it from the epoll set */
                c->fd = -1;
                if (bench_now_us() < end && bench_churn_open(ep, c, i, port) != 0)
                    out->failed++;
            }
        }
    }
    for (uint32_t i = 0; i < conns; i++)
        if (sl[i].fd >= 0)
            close(sl[i].fd);
    out->secs = (double)(bench_now_us() - t0) / 1e6;
    out->per_s = out->secs > 0 ? (double)out->ok / out->secs : 0;
    free(sl);
    close(ep);
    return err;
}
