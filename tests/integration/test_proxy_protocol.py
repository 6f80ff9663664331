"""PROXY protocol toward a node (issue 5): with --proxy-protocol-from, a
connection from a trusted load balancer must begin with a PROXY v1/v2 header,
and the client named in it is the one the node logs, sends to agents in OPEN
and shows in /v1/tunnels; a trusted peer without a good header is closed,
logged and counted; an untrusted one is never parsed.

One node trusts 127.0.0.2/32 only. Clients that bind their source to
127.0.0.2 play the load balancer (they write the header themselves); those
from 127.0.0.1 are untrusted. Agents reach the tunnel listener through a tiny
relay that dials from 127.0.0.2 and prepends a header, as a real L4 balancer
with send-proxy would; a plain agent dials the node directly (untrusted).
"""
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import harness as h

TRUSTED = "127.0.0.2"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, sport, dst, dport):
    """A v2 PROXY header (TCP over IPv4 or IPv6) from src:sport to dst:dport."""
    if ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack(">HH", sport, dport))
        fam = 0x21
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
        fam = 0x11
    return V2_SIG + bytes([0x21, fam]) + struct.pack(">H", len(body)) + body


V2_LOCAL = V2_SIG + b"\x20\x00\x00\x00"


def connect_from(src_ip, addr, timeout=10):
    host, port = h.split_addr(addr)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src_ip, 0))
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(s, payload, want=None):
    """Sends payload, reads until len(want or payload) bytes or EOF."""
    want = payload if want is None else want
    s.sendall(payload)
    got = b""
    while len(got) < len(want):
        b = s.recv(65536)
        if not b:
            break
        got += b
    return got


def closed_by_peer(s, timeout=10):
    """True once the peer closes (EOF or reset) without sending anything."""
    s.settimeout(timeout)
    try:
        b = s.recv(4096)
        return b == b""
    except (ConnectionResetError, ConnectionAbortedError):
        return True
    except socket.timeout:
        return False


class ProxyRelay:
    """A stand-in for an L4 balancer with send-proxy: accepts on
    127.0.0.1:<ephemeral>, dials <target> from <source_ip>, writes <header>
    first, then relays bytes both ways (threads)."""

    def __init__(self, target, header, source_ip=TRUSTED):
        self.target = h.split_addr(target)
        self.header = header
        self.source_ip = source_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.closed = False
        self.accepted = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                up.bind((self.source_ip, 0))
                up.connect(self.target)
                up.sendall(self.header)
            except OSError:
                c.close()
                continue
            for a, b in ((c, up), (up, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def check_flag_errors(c):
    """Bad --proxy-protocol-from values are refused at start, with the value."""
    base = [h.NODE, "--cert", "x", "--key", "x", "--ca", c.ca]
    for bad, needle in (("10.0.0.1/8", "'10.0.0.1/8' is not IP/PREFIX"),
                        ("10.0.0.0/33", "'10.0.0.0/33'"),
                        ("10.0.0.0/8,", "expected CIDR"),
                        ("example.com", "'example.com'")):
        r = subprocess.run(base + ["--proxy-protocol-from", bad], capture_output=True, text=True,
                           timeout=10)
        h.check(r.returncode == 1 and needle in r.stderr,
                "--proxy-protocol-from %s: exit %d, %r" % (bad, r.returncode, r.stderr))


def scenario(c):
    check_flag_errors(c)
    svc = h.Service(h.echo_handler)
    node, info = c.node(entries=["web/echo"],
                        extra=["--proxy-protocol-from", "%s/32,2001:db8::/32" % TRUSTED,
                               "--log-level", "debug"])
    listen, admin = info["listen"], info["admin"]
    entry = info["entries"]["web/echo"]
    h.check("ev=proxy_protocol from=127.0.0.2/32,2001:db8::/32" in node.text(),
            "the trusted networks are logged at start")

    def metric(result):
        v = h.node_metric(admin, 'warren_node_proxy_headers_total{result="%s"}' % result)
        return int(v or 0)

    def logged(pattern, what, timeout=10):
        return h.wait_for(lambda: re.search(pattern, node.text()), timeout, what)

    # Agents. a1 goes through a balancer that sends a v2 header, a2 through
    # one that sends v1 (TCP6), a3 dials the node directly (untrusted).
    relay_v2 = ProxyRelay(listen, v2_header("198.51.100.9", 5555, "127.0.0.1", 7443))
    relay_v1 = ProxyRelay(listen, b"PROXY TCP6 2001:db8::9 2001:db8::1 6666 7443\r\n")
    a1 = c.agent(relay_v2.addr, "web", {"echo": svc.addr}, name="a1",
                 extra=["--log-level", "debug"])
    a2 = c.agent(relay_v1.addr, "web", {"echo": svc.addr}, name="a2",
                 extra=["--log-level", "debug"])
    a3 = c.agent(listen, "web", {"echo": svc.addr}, name="a3", extra=["--log-level", "debug"])
    h.wait_for(lambda: all(h.holds_agent(admin, "web", a) for a in ("a1", "a2", "a3")), 20,
               "three agents registered")
    agents = {a["agent_id"]: a for a in
              h.admin_json(admin, "/v1/tunnels")["tunnels"]["web"]["agents"]}
    h.check(agents["a1"]["peer"] == "198.51.100.9:5555",
            "a1's peer is its v2 header's client: %r" % agents["a1"])
    h.check(agents["a2"]["peer"] == "[2001:db8::9]:6666",
            "a2's peer is its v1 header's client: %r" % agents["a2"])
    h.check(re.match(r"127\.0\.0\.1:\d+$", agents["a3"]["peer"]),
            "a3 (untrusted) keeps its socket address: %r" % agents["a3"])
    logged(r"ev=agent_ready .*agent=a1 .*peer=198\.51\.100\.9:5555", "a1 ready as 198.51.100.9")
    logged(r"ev=proxy_header listener=agents .*via=127\.0\.0\.2:\d+ client=198\.51\.100\.9:5555",
           "a1's header logged with the balancer's address")
    h.check(metric("ok") == 2, "two agents' headers counted ok: %d" % metric("ok"))

    def agent_saw(client):
        pat = re.compile(r"ev=stream_open .*client=%s\b" % re.escape(client))
        return any(pat.search(a.text()) for a in (a1, a2, a3))

    # 1. A visitor through the balancer, v1 header, then data in the same send.
    s = connect_from(TRUSTED, entry)
    msg = os.urandom(2000)
    got = exchange(s, b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 8050\r\n" + msg, msg)
    s.close()
    h.check(got == msg, "v1 visitor: echo without the header (%d of %d bytes)"
            % (len(got), len(msg)))
    logged(r"ev=visitor_routed .*client=203\.0\.113\.7:4242 ", "node logs the v1 client")
    h.wait_for(lambda: agent_saw("203.0.113.7:4242"), 10, "an agent got the v1 client in OPEN")

    # 2. v2 header for an IPv6 client, sent on its own, data a moment later.
    s = connect_from(TRUSTED, entry)
    s.sendall(v2_header("2001:db8::7", 4343, "2001:db8::1", 8050))
    time.sleep(0.05)  # the header arrives alone: the node must wait for the data
    got = exchange(s, b"after the header")
    s.close()
    h.check(got == b"after the header", "v2 visitor: echo %r" % got)
    logged(r"ev=visitor_routed .*client=\[2001:db8::7\]:4343 ", "node logs the v2 client")
    h.wait_for(lambda: agent_saw("[2001:db8::7]:4343"), 10, "an agent got the v2 client in OPEN")

    # 3. A header cut in two sends (incremental parsing).
    s = connect_from(TRUSTED, entry)
    hdr = v2_header("192.0.2.55", 1234, "10.0.0.1", 8050)
    s.sendall(hdr[:7])
    time.sleep(0.05)
    got = exchange(s, hdr[7:] + b"split", b"split")
    s.close()
    h.check(got == b"split", "split header: echo %r" % got)
    logged(r"ev=visitor_routed .*client=192\.0\.2\.55:1234 ", "node logs the split header's client")
    h.check(metric("ok") == 5, "five headers ok: %d" % metric("ok"))

    # 4. LOCAL (a health check): served, with the balancer's own address.
    s = connect_from(TRUSTED, entry)
    got = exchange(s, V2_LOCAL + b"health", b"health")
    port = s.getsockname()[1]
    s.close()
    h.check(got == b"health", "LOCAL visitor: echo %r" % got)
    logged(r"ev=visitor_routed .*client=127\.0\.0\.2:%d " % port, "LOCAL keeps the socket address")
    h.check(metric("local") == 1, "one LOCAL header: %d" % metric("local"))

    # 5. Trusted, garbage instead of a header: closed, logged, counted.
    bad0 = metric("bad")
    s = connect_from(TRUSTED, entry)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    h.check(closed_by_peer(s), "garbage from a trusted peer: closed")
    s.close()
    logged(r'ev=proxy_header_bad listener=entry entry=\S+ conn=\d+ peer=127\.0\.0\.2:\d+ '
           r'reason="not a PROXY header"', "garbage logged")
    # A malformed v1 line.
    s = connect_from(TRUSTED, entry)
    s.sendall(b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 99999\r\nhello")
    h.check(closed_by_peer(s), "bad v1 port: closed")
    s.close()
    logged(r'ev=proxy_header_bad .*reason="v1: bad destination port"', "bad port logged")

    # 6. Trusted, no header at all: closed after the entry's 3 s deadline.
    s = connect_from(TRUSTED, entry)
    t0 = time.monotonic()
    h.check(closed_by_peer(s, timeout=15), "silent trusted peer: closed")
    waited = time.monotonic() - t0
    s.close()
    h.check(2.5 <= waited <= 10, "closed after the deadline (%.1fs)" % waited)
    logged(r'ev=proxy_header_bad listener=entry .*reason="timeout"', "timeout logged")
    h.check(metric("bad") == bad0 + 3, "three bad headers: %d" % (metric("bad") - bad0))

    # 7. Untrusted (127.0.0.1) sending a PROXY header: just data, echoed as is.
    s = h.connect(entry)
    payload = b"PROXY TCP4 203.0.113.99 10.0.0.1 4242 8050\r\nrest"
    got = exchange(s, payload)
    port = s.getsockname()[1]
    s.close()
    h.check(got == payload, "untrusted visitor's header echoed verbatim: %r" % got)
    logged(r"ev=visitor_routed .*client=127\.0\.0\.1:%d " % port,
           "untrusted visitor logged with its socket address")
    h.check("203.0.113.99" not in node.text(), "an untrusted header is never parsed")

    # 8. The tunnel listener: a trusted TLS client without a header, and one
    # whose header is garbage: closed before any TLS, logged, counted.
    bad0 = metric("bad")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["warren/1"])
    raw = connect_from(TRUSTED, listen)
    try:
        t = ctx.wrap_socket(raw, server_hostname=c.cluster)
        t.close()
        h.check(False, "a trusted TLS client without a header completed the handshake")
    except (ssl.SSLError, OSError):
        pass
    raw.close()
    logged(r'ev=proxy_header_bad listener=agents conn=\d+ peer=127\.0\.0\.2:\d+ '
           r'reason="not a PROXY header"', "headerless agent connection logged")
    raw = connect_from(TRUSTED, listen)
    raw.sendall(b"PROXY TCP4 1.2.3.4\r\n")
    h.check(closed_by_peer(raw), "bad header on the tunnel listener: closed")
    raw.close()
    logged(r'ev=proxy_header_bad listener=agents .*reason="v1: fields', "bad agent header logged")
    h.check(metric("bad") == bad0 + 2, "two more bad headers: %d" % (metric("bad") - bad0))
    h.check("ev=agent_tls_failed" not in node.text(),
            "PROXY failures are not reported as TLS failures")

    # The agents behind the balancers still serve after all this.
    for k in range(6):
        s = connect_from(TRUSTED, entry)
        got = exchange(s, v2_header("192.0.2.%d" % (k + 1), 1000 + k, "10.0.0.1", 8050) + b"ok",
                       b"ok")
        s.close()
        h.check(got == b"ok", "visitor %d after the bad cases: %r" % (k, got))
    h.check(node.alive(), "node alive")
    relay_v1.close()
    relay_v2.close()
    svc.close()


if __name__ == "__main__":
    h.run(scenario, "test_proxy_protocol")
