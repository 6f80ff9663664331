"""Integration-test harness: starts the real warren binaries on loopback.

Every process is started with its log in the test's temp dir, stopped by PID
when the test ends (never by name), and its log printed when the test fails.
Waits poll a condition until a deadline; nothing sleeps to synchronise.
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

NODE = os.environ.get("WARREN_NODE", "warren-node")
AGENT = os.environ.get("WARREN_AGENT", "warren-agent")
WARRENCTL = os.environ.get("WARRENCTL", "warrenctl")


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def wait_for(cond, timeout, what, interval=0.02):
    """Polls cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Proc:
    def __init__(self, name, argv, logpath, env=None):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.log = open(logpath, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def wait(self, timeout):
        return self.p.wait(timeout=timeout)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.p.wait(timeout=5)
        self.log.close()
        return self.p.returncode

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.p.wait(timeout=5)

    def text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def count(self, needle):
        return self.text().count(needle)

    def rss_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Cluster:
    """A temp dir with a CA, node certificates and tokens, and the processes started."""

    def __init__(self, name="test"):
        self.dir = tempfile.mkdtemp(prefix="warren-%s-" % name)
        self.procs = []
        self.cluster = "c1"
        self.ca_dir = os.path.join(self.dir, "ca")
        os.mkdir(self.ca_dir)
        self.ctl("ca", "init", "--dir", self.ca_dir, "--cluster", self.cluster)
        self.ca = os.path.join(self.ca_dir, "ca.crt")
        self.n_nodes = 0

    def ctl(self, *args, check_rc=True):
        r = subprocess.run([WARRENCTL] + list(args), capture_output=True, text=True, timeout=30)
        if check_rc and r.returncode != 0:
            raise TestFailure("warrenctl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                                 r.stderr))
        return r

    def path(self, name):
        return os.path.join(self.dir, name)

    def token(self, tunnel, ttl="1h", max_weight=None, ca_dir=None):
        out = self.path("token-%s-%d" % (tunnel, len(os.listdir(self.dir))))
        args = ["token", "create", "--ca-dir", ca_dir or self.ca_dir, "--tunnel", tunnel,
                "--ttl", ttl, "--out", out]
        if max_weight is not None:
            args += ["--max-weight", str(max_weight)]
        self.ctl(*args)
        return out

    def start(self, name, argv):
        log = self.path(name + ".log")
        k = 1
        while os.path.exists(log):  # a restarted process gets a log of its own
            k += 1
            log = self.path("%s.%d.log" % (name, k))
        p = Proc(name, argv, log)
        self.procs.append(p)
        return p

    def cluster_key(self):
        """A gossip key file made by warrenctl keyring generate (one per cluster)."""
        out = self.path("cluster.key")
        if not os.path.exists(out):
            self.ctl("keyring", "generate", "--out", out)
        return out

    def node(self, entries=(), node_id=None, extra=(), listen="127.0.0.1:0", cluster_key=None,
             gossip_addr="127.0.0.1:0", join=()):
        """Starts a node; returns (proc, info) where info has 'listen', 'entries',
        'admin' (the admin API's address, None when disabled) and 'gossip' (the bound
        gossip address, None when gossip is off) and 'peer' (the bound peer-link
        address, None without gossip). The admin API and the peer listener bind
        ephemeral ports unless extra gives --admin-addr / --peer-addr. Gossip runs when cluster_key is given
        (a key file, see cluster_key()); join lists gossip addresses to join."""
        self.n_nodes += 1
        nid = node_id or "n%d" % self.n_nodes
        crt, key = self.path(nid + ".crt"), self.path(nid + ".key")
        if not os.path.exists(crt):
            self.ctl("cert", "issue", "--ca-dir", self.ca_dir, "--node-id", nid,
                     "--out-cert", crt, "--out-key", key)
        ready = self.path(nid + ".ready")
        if os.path.exists(ready):
            os.unlink(ready)
        argv = [NODE, "--listen", listen, "--cert", crt, "--key", key, "--ca", self.ca,
                "--node-id", nid, "--ready-file", ready]
        for e in entries:
            # "TUNNEL/SVC" binds an ephemeral loopback port; "ADDR=TUNNEL/SVC"
            # binds ADDR (a restarted node keeps its port for the LB).
            argv += ["--entry", e if "=" in e else "127.0.0.1:0=" + e]
        if not any(str(a).startswith("--admin-addr") for a in extra):
            argv += ["--admin-addr", "127.0.0.1:0"]
        if not any(str(a).startswith("--peer-addr") for a in extra):
            argv += ["--peer-addr", "127.0.0.1:0"]
        if cluster_key is not None:
            argv += ["--cluster-key", cluster_key, "--gossip-addr", gossip_addr]
            for j in join:
                argv += ["--join", j]
        argv += list(extra)
        p = self.start(nid, argv)
        wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, "node %s ready" % nid)
        check(p.alive(), "node %s exited at start:\n%s" % (nid, p.text()))
        info = {"listen": None, "entries": {}, "admin": None, "gossip": None, "peer": None}
        with open(ready) as f:
            for line in f:
                parts = line.split()
                if parts[0] == "listen":
                    info["listen"] = parts[1]
                elif parts[0] == "admin":
                    info["admin"] = parts[1]
                elif parts[0] == "gossip":
                    info["gossip"] = parts[1]
                elif parts[0] == "peer":
                    info["peer"] = parts[1]
                elif parts[0] == "entry":
                    info["entries"][parts[2]] = parts[1]
        return p, info

    def agent(self, proxy, tunnel, services, token=None, name=None, extra=(), wrap=()):
        """wrap: argv put in front, e.g. ("ip", "netns", "exec", NS), which must
        exec the agent so that the PID stopped is the agent's."""
        name = name or "agent%d" % len(self.procs)
        token = token or self.token(tunnel)
        argv = list(wrap) + [AGENT, "--proxy", proxy, "--tunnel", tunnel, "--token", token,
                             "--ca", self.ca, "--agent-id", name, "--backoff-base", "100ms",
                             "--backoff-max", "1s"]
        for sname, addr in services.items():
            argv += ["--service", "%s=%s" % (sname, addr)]
        argv += list(extra)
        return self.start(name, argv)

    def stop_all(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:
                pass

    def dump_logs(self):
        for p in self.procs:
            sys.stderr.write("----- log of %s (pid %d) -----\n%s\n" % (p.name, p.pid, p.text()[-20000:]))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


_ports_given = set()


def free_port(host="127.0.0.1", udp_too=False):
    """A port free for TCP (and UDP, with udp_too) on <host> now; another
    process may take it later: only for programs that cannot bind port 0 and
    report it (HAProxy), or where the test needs the number first."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
            # The kernel may hand the same port out again right after it was
            # released: never give one twice in a test.
            if port in _ports_given:
                continue
            if not udp_too:
                _ports_given.add(port)
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                    _ports_given.add(port)
                    return port
                except OSError:
                    continue
    raise TestFailure("no free port found")


class HAProxy:
    """A real HAProxy in mode tcp with one listener per name, each balancing
    over a list of servers; reload() rewrites the server lists (a new
    process with -sf hands the listeners over, as an operator would)."""

    def __init__(self, cluster, name, balance="roundrobin", host="127.0.0.1", seamless=False):
        """host: the IP the listeners bind. seamless: reload() hands the
        listening sockets themselves to the new process (stats socket with
        expose-fd listeners, haproxy -x), so that no connection queued on the
        old process's sockets is reset: for tests that count every visitor."""
        self.c = cluster
        self.name = name
        self.balance = balance
        self.host = host
        self.seamless = seamless
        self.ports = {}
        self.proc = None

    def listener(self, lname):
        if lname not in self.ports:
            self.ports[lname] = free_port(self.host)
        return "%s:%d" % (self.host, self.ports[lname])

    def _sock(self):
        return self.c.path("%s.sock" % self.name)

    def _write(self, backends):
        cfg = self.c.path("%s.cfg" % self.name)
        lines = ["global", "    maxconn 4096", "defaults", "    mode tcp",
                 "    timeout connect 2s", "    timeout client 60s", "    timeout server 60s",
                 "    retries 3", "    option redispatch 1"]
        if self.seamless:
            lines[1:1] = ["    stats socket %s mode 600 level admin expose-fd listeners"
                          % self._sock()]
        for lname, servers in backends.items():
            lines += ["listen %s" % lname, "    bind %s" % self.listener(lname),
                      "    balance %s" % self.balance]
            if any(isinstance(x, tuple) for x in servers):
                lines.append("    option httpchk GET /readyz")
            for i, srv in enumerate(servers):
                if isinstance(srv, tuple):
                    # (addr, admin addr): HAProxy asks the node's /readyz.
                    addr, admin = srv
                    ahost, aport = split_addr(admin)
                    lines.append("    server s%d %s check addr %s port %d inter 100ms fall 1 rise 1"
                                 % (i, addr, ahost, aport))
                else:
                    # A plain address: no health check, the LB stays dumb.
                    lines.append("    server s%d %s" % (i, srv))
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        return cfg

    def start(self, backends):
        cfg = self._write(backends)
        self.proc = self.c.start(self.name, [HAPROXY, "-db", "-f", cfg])
        for lname in backends:
            host, port = split_addr(self.listener(lname))
            wait_for(lambda: _can_connect(host, port) or not self.proc.alive(), 10,
                     "haproxy listening on %d" % port)
            check(self.proc.alive(), "haproxy exited:\n" + self.proc.text())

    def reload(self, backends):
        cfg = self._write(backends)
        old = self.proc
        xfer = ["-x", self._sock()] if self.seamless else []
        self.proc = self.c.start(self.name, [HAPROXY, "-db", "-f", cfg] + xfer
                                 + ["-sf", str(old.pid)])
        # The old process stops listening once the new one has bound, and
        # lives on while connections it carries (agents' tunnels) last.
        wait_for(lambda: all("Proxy %s stopped" % l in old.text() for l in backends)
                 or not old.alive(), 10, "old haproxy hands its listeners over")
        check(self.proc.alive(), "new haproxy exited:\n" + self.proc.text())


def _can_connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def split_addr(s):
    host, port = s.rsplit(":", 1)
    return host.strip("[]"), int(port)


def connect(addr, timeout=10):
    s = socket.create_connection(split_addr(addr), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def http_get(addr, path, timeout=10, method="GET"):
    """One request to an admin API; returns (status, headers dict lower-cased, body bytes)."""
    import http.client
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def recv_all(s, limit=None):
    chunks = []
    n = 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        chunks.append(b)
        n += len(b)
        if limit is not None and n > limit:
            raise TestFailure("received more than %d bytes" % limit)
    return b"".join(chunks)


class Service:
    """A TCP service on 127.0.0.1:<ephemeral> run in threads. handler(conn) serves one client."""

    def __init__(self, handler):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.handler = handler
        self.accepted = 0
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def echo_handler(c):
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        c.sendall(b)


def name_handler(name):
    """Replies with its name to each line received; for telling backends apart."""
    def h(c):
        f = c.makefile("rb")
        for _ in f:
            c.sendall(name.encode() + b"\n")
    return h


def pattern(n, seed=0):
    """n deterministic pseudo-random bytes (fast: repeated blocks of a hash chain)."""
    block = b"".join(hashlib.sha256(b"%d-%d" % (seed, i)).digest() for i in range(2048))
    reps = n // len(block) + 1
    return (block * reps)[:n]


def run(test_fn, name):
    """Runs one scenario: cleans up processes always, dumps logs on failure."""
    c = Cluster(name)
    ok = False
    try:
        test_fn(c)
        ok = True
    except Exception:
        traceback.print_exc()
    finally:
        c.stop_all()
        if not ok:
            c.dump_logs()
        c.cleanup()
    print("%s: %s" % (name, "passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


# ----- Helpers for the agent-pool tests (a fleet that changes under load) -----

_node_help = []


def node_has_flag(flag):
    """Whether warren-node --help lists <flag> (features still being built)."""
    if not _node_help:
        r = subprocess.run([NODE, "--help"], capture_output=True, text=True, timeout=10)
        _node_help.append(r.stdout + r.stderr)
    return (" %s " % flag) in _node_help[0] or (" %s\n" % flag) in _node_help[0]


def read_prom(path):
    """{'name{labels}': value} from a Prometheus text file; {} if not written yet."""
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                k, v = line.rsplit(" ", 1)
                vals[k] = float(v)
    except FileNotFoundError:
        pass
    return vals


def admin_json(admin, path, timeout=5):
    import json
    st, _, body = http_get(admin, path, timeout=timeout)
    check(st == 200, "%s on %s answered %d" % (path, admin, st))
    return json.loads(body)


def holds_agent(admin, tunnel, agent):
    """Whether the node at <admin> lists <agent> READY in <tunnel>'s pool."""
    t = admin_json(admin, "/v1/tunnels")["tunnels"].get(tunnel)
    return t is not None and any(a["agent_id"] == agent and a["state"] == "READY"
                                 for a in t["agents"])


def alive_members(admin):
    """Sorted ids of the members the node at <admin> holds ALIVE; None if it cannot answer."""
    try:
        return sorted(m["id"] for m in admin_json(admin, "/v1/members", timeout=2)
                      if m["state"] == "ALIVE")
    except (OSError, TestFailure):
        return None


def node_metric(admin, name):
    """The value of metric <name> (with labels if given) on the node at <admin>."""
    st, _, body = http_get(admin, "/metrics", timeout=5)
    check(st == 200, "/metrics on %s answered %d" % (admin, st))
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class VisitorLoad:
    """Visitors in <threads> threads, each in a loop: a new TCP connection to
    <addr>, one short request, the echo read back in full, close. Every
    request is recorded (start, end, error or None); bounded by <max_requests>
    per thread and <max_seconds>. Failures are kept with what went wrong so a
    test can tell the ones in flight at an event from the ones after it."""

    def __init__(self, addr, threads=4, max_requests=20000, max_seconds=55, timeout=10,
                 pause=0.005, tag="v"):
        self.addr = addr
        self.n_threads = threads
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.pause = pause
        self.tag = tag.encode()
        self.lock = threading.Lock()
        self.ok_count = 0
        self.fails = []  # (t_start, t_end, thread, request, error)
        self.stop_ev = threading.Event()
        self.threads = []
        self.running = 0
        self.t0 = time.monotonic()  # times in summary() count from here
        self.events = []  # (t, what): the test's marks, printed with failures

    def mark(self, what):
        """Records an event (a kill, a reload) to print next to the failures."""
        with self.lock:
            self.events.append((time.monotonic(), what))
        return self.events[-1][0]

    def _request(self, tid, k):
        payload = b"%s %d/%d %s\n" % (self.tag, tid, k, os.urandom(6).hex().encode())
        s = connect(self.addr, timeout=self.timeout)
        try:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                b = s.recv(len(payload) - len(got))
                if not b:
                    raise TestFailure("closed after %d of %d bytes" % (len(got), len(payload)))
                got += b
            if got != payload:
                raise TestFailure("echo mismatch: sent %r got %r" % (payload, got))
        finally:
            s.close()

    def _loop(self, tid):
        deadline = time.monotonic() + self.max_seconds
        try:
            for k in range(self.max_requests):
                if self.stop_ev.is_set() or time.monotonic() >= deadline:
                    return
                t0 = time.monotonic()
                try:
                    self._request(tid, k)
                    with self.lock:
                        self.ok_count += 1
                except (OSError, TestFailure) as e:
                    with self.lock:
                        self.fails.append((t0, time.monotonic(), tid, k, repr(e)))
                self.stop_ev.wait(self.pause)
        finally:
            with self.lock:
                self.running -= 1

    def start(self):
        self.running = self.n_threads
        for tid in range(self.n_threads):
            t = threading.Thread(target=self._loop, args=(tid,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        check(all(not t.is_alive() for t in self.threads), "visitor threads did not stop")
        return self

    def ok(self):
        with self.lock:
            return self.ok_count

    def failures(self):
        with self.lock:
            return list(self.fails)

    def still_running(self):
        with self.lock:
            return self.running == self.n_threads

    def flowing(self, more, timeout, what):
        """Waits for <more> successes after now (the load is still running)."""
        base = self.ok()
        check(self.still_running(), "visitor load ended early (bounds), before %s" % what)
        wait_for(lambda: self.ok() >= base + more, timeout,
                 "%d more visitor successes %s (%d so far, %d failures)"
                 % (more, what, base, len(self.failures())), interval=0.02)

    def summary(self):
        f = self.failures()
        if not f:
            return "%d ok, 0 failed" % self.ok()
        rows = [(x[0], "FAIL start +%.3fs end +%.3fs thread %d req %d: %s"
                 % (x[0] - self.t0, x[1] - self.t0, x[2], x[3], x[4])) for x in f[:20]]
        rows += [(t, "event +%.3fs: %s" % (t - self.t0, what)) for t, what in self.events]
        return "%d ok, %d failed (times from the load's start):%s" % (
            self.ok(), len(f), "".join("\n    " + r for _, r in sorted(rows)))
