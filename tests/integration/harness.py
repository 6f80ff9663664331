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
        gossip address, None when gossip is off). The admin API binds an ephemeral
        port unless extra gives --admin-addr. Gossip runs when cluster_key is given
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
            argv += ["--entry", "127.0.0.1:0=" + e]
        if not any(str(a).startswith("--admin-addr") for a in extra):
            argv += ["--admin-addr", "127.0.0.1:0"]
        if cluster_key is not None:
            argv += ["--cluster-key", cluster_key, "--gossip-addr", gossip_addr]
            for j in join:
                argv += ["--join", j]
        argv += list(extra)
        p = self.start(nid, argv)
        wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, "node %s ready" % nid)
        check(p.alive(), "node %s exited at start:\n%s" % (nid, p.text()))
        info = {"listen": None, "entries": {}, "admin": None, "gossip": None}
        with open(ready) as f:
            for line in f:
                parts = line.split()
                if parts[0] == "listen":
                    info["listen"] = parts[1]
                elif parts[0] == "admin":
                    info["admin"] = parts[1]
                elif parts[0] == "gossip":
                    info["gossip"] = parts[1]
                elif parts[0] == "entry":
                    info["entries"][parts[2]] = parts[1]
        return p, info

    def agent(self, proxy, tunnel, services, token=None, name=None, extra=()):
        name = name or "agent%d" % len(self.procs)
        token = token or self.token(tunnel)
        argv = [AGENT, "--proxy", proxy, "--tunnel", tunnel, "--token", token, "--ca", self.ca,
                "--agent-id", name, "--backoff-base", "100ms", "--backoff-max", "1s"]
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
