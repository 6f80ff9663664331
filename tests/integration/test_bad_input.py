"""Bad input from would-be agents and visitors (issue 2, "Bad input"): each
case closes only the offending stream or connection, with a clear logged
reason and an ERROR code where the protocol allows, and the node keeps
serving a well-behaved agent throughout (checked after every case).
"""
import os
import re
import socket
import ssl
import threading
import time

import harness as h
import wrproto as wp

WINDOW = 1 << 20


def read_token(path):
    with open(path) as f:
        return f.read().strip()


def scenario(c):
    svc = h.Service(h.echo_handler)
    node, info = c.node(entries=["good/echo", "raw/echo", "stall/echo"],
                        extra=["--hello-timeout", "1s", "--window", "1M",
                               "--ping-interval", "1s", "--ping-timeout", "3s"])
    listen, ca = info["listen"], c.ca
    c.agent(listen, "good", {"echo": svc.addr}, name="good", extra=["--window", "1M"])
    h.wait_for(lambda: node.count("ev=agent_ready") >= 1, 15, "good agent registered")
    good_entry = info["entries"]["good/echo"]

    def still_serving(case):
        s = h.connect(good_entry)
        msg = os.urandom(4096)
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = s.recv(65536)
            h.check(b, "%s: good visitor got EOF" % case)
            got += b
        h.check(got == msg, "%s: good visitor got wrong bytes" % case)
        s.close()
        h.check(node.alive(), "%s: node died" % case)

    def logged(pattern, what, timeout=10):
        h.wait_for(lambda: re.search(pattern, node.text()), timeout, what)

    def expect_error(peer, code, case):
        m = peer.read_control()
        h.check(isinstance(m, dict) and m.get("type") == wp.ERROR,
                "%s: expected ERROR, got %r" % (case, m))
        h.check(m.get("code") == code, "%s: ERROR code %r, expected %d" % (case, m.get("code"), code))
        h.check(peer.closed(), "%s: connection not closed after ERROR" % case)
        peer.close()
        return m

    tok_good = read_token(c.token("raw"))

    # 1. Garbage instead of TLS.
    s = h.connect(listen)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
    logged(r"ev=agent_tls_failed", "garbage logged as a TLS failure")
    still_serving("garbage")

    # 2. A TLS client with the wrong ALPN, and one with none.
    for alpn in (("h2",), None):
        try:
            p = wp.RawPeer(listen, ca, alpn=alpn)
            # Some stacks only notice the alert on the first read.
            h.check(p.closed(), "wrong ALPN %r: connection stayed open" % (alpn,))
            p.close()
        except (ssl.SSLError, ConnectionError):
            pass
    logged(r"ev=agent_tls_failed .*err=(EALPN|ETLS)", "ALPN failure logged")
    still_serving("alpn")

    # 3. HELLO that is not msgpack.
    p = wp.RawPeer(listen, ca)
    p.control(b"\xc1\xc1 not msgpack")
    expect_error(p, 1, "hello not msgpack")
    logged(r"ev=agent_rejected .*code=protocol", "non-msgpack hello rejected")
    still_serving("not msgpack")

    # 4. HELLO too large: a CONTROL frame above the 16 KiB cap.
    p = wp.RawPeer(listen, ca)
    big = wp.hello("raw", tok_good)
    big["pad"] = "x" * 20000
    p.control(big)
    h.check(p.closed(), "oversized hello: connection not closed")
    p.close()
    logged(r"ev=tunnel_protocol_error .*reason=\"[^\"]*(oversized|too large|large)",
           "oversized hello logged")
    still_serving("hello too large")

    # 5. HELLO missing fields.
    p = wp.RawPeer(listen, ca)
    p.control({"type": wp.HELLO, "v": 1, "role": "agent"})
    expect_error(p, 1, "hello missing fields")
    still_serving("missing fields")

    # 6. Forged token (signed by another CA), 7. other-tunnel token, 8. expired token.
    other_ca = c.path("other-ca")
    os.mkdir(other_ca)
    c.ctl("ca", "init", "--dir", other_ca, "--cluster", "c1")
    forged = read_token(c.token("raw", ca_dir=other_ca))
    p = wp.RawPeer(listen, ca)
    p.control(wp.hello("raw", forged))
    m = expect_error(p, 2, "forged token")
    h.check("signature" in m.get("msg", ""), "forged token reason: %r" % m)
    other = read_token(c.token("elsewhere"))
    p = wp.RawPeer(listen, ca)
    p.control(wp.hello("raw", other))
    m = expect_error(p, 2, "other-tunnel token")
    h.check("another tunnel" in m.get("msg", ""), "other-tunnel reason: %r" % m)
    t_issued = time.time()
    expired = read_token(c.token("raw", ttl="1s"))
    # The token's real TTL has to pass on the wall clock (whole seconds).
    h.wait_for(lambda: time.time() > t_issued + 2.05, 5, "the 1 s token to expire")
    p = wp.RawPeer(listen, ca)
    p.control(wp.hello("raw", expired))
    m = expect_error(p, 2, "expired token")
    h.check("expired" in m.get("msg", ""), "expired token reason: %r" % m)
    # A weight above the token's maximum.
    capped = read_token(c.token("raw", max_weight=10))
    p = wp.RawPeer(listen, ca)
    p.control(wp.hello("raw", capped, weight=11))
    expect_error(p, 2, "weight above max")
    still_serving("tokens")

    def registered_peer(tunnel="raw"):
        """A raw agent for <tunnel>, once the node has put it in the pool."""
        before = node.count("ev=agent_ready")
        p = wp.RawPeer(listen, ca)
        p.control(wp.hello(tunnel, read_token(c.token(tunnel)), agent="raw-" + tunnel))
        m = p.read_control()
        h.check(isinstance(m, dict) and m.get("type") == wp.WELCOME, "no WELCOME: %r" % m)
        h.wait_for(lambda: node.count("ev=agent_ready") > before, 5, "raw agent in pool")
        return p

    # 9. Oversized frame, 10. unknown frame type, 11. frame for a never-opened stream.
    for case, data in (("oversized frame", wp.frame(wp.DATA, 1, b"", length=0xFFFFFF)),
                       ("unknown frame type", wp.frame(42, 0, b"x")),
                       ("never-opened stream", wp.frame(wp.DATA, 999, b"hello"))):
        p = registered_peer()
        p.send(data)
        h.check(p.closed(), "%s: connection not closed" % case)
        p.close()
        still_serving(case)
    logged(r"ev=tunnel_protocol_error .*unknown frame type", "unknown type logged")

    # 12. Frames for a closed stream are dropped; 13. a window overrun resets
    # only that stream. Both leave the connection up (PING answered).
    p = registered_peer()
    v = h.connect(info["entries"]["raw/echo"])
    f = p.read_frame()
    while f[0] != wp.OPEN:
        f = p.read_frame()
    sid = f[2]
    p.send(wp.frame(wp.RST, sid, (9).to_bytes(4, "big")))  # we refuse it: stream closed
    v.settimeout(10)
    h.check(v.recv(10) == b"", "visitor of a reset stream got data")
    v.close()
    p.send(wp.frame(wp.DATA, sid, b"late data"))             # closed stream: dropped
    # The visitor reads nothing through a tiny receive buffer, so the node
    # cannot pass the bytes on and returns no credit: past the window plus
    # what the kernel buffers, the stream must be reset.
    v2 = socket.socket()
    v2.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    v2.connect(h.split_addr(info["entries"]["raw/echo"]))
    f = p.read_frame()
    while f[0] != wp.OPEN:
        f = p.read_frame()
    sid2 = f[2]
    chunk = b"z" * 65536
    for _ in range(256):                                      # 16 MB >> window + buffers
        p.send(wp.frame(wp.DATA, sid2, chunk))
    p.send(wp.frame(wp.PING, 0, b"12345678"))
    got_rst = got_pong = False
    while not (got_rst and got_pong):
        f = p.read_frame()
        h.check(f is not None, "connection closed after a window overrun")
        if f[0] == wp.RST and f[2] == sid2:
            h.check(int.from_bytes(f[3][:4], "big") == 5, "RST code %r" % f[3])
            got_rst = True
        if f[0] == wp.PONG and f[3] == b"12345678":
            got_pong = True
    v2.close()
    p.close()
    still_serving("window overrun")

    # 14. Slowloris: one byte of a ClientHello, then silence; and TLS with no HELLO.
    s = h.connect(listen)
    s.sendall(b"\x16")
    s.settimeout(10)
    t0 = time.monotonic()
    try:
        h.check(s.recv(10) == b"", "slow handshake got data")
    except ConnectionResetError:
        pass
    h.check(time.monotonic() - t0 < 5, "slow handshake not cut by the 1 s deadline")
    s.close()
    p = wp.RawPeer(listen, ca)
    t0 = time.monotonic()
    m = p.read_control()
    h.check(m is None or m.get("code") == 8, "silent TLS peer: %r" % m)
    h.check(time.monotonic() - t0 < 5, "TLS peer without HELLO not cut by the deadline")
    p.close()
    still_serving("slowloris")

    # 15. An agent that stops reading: a visitor pushes 256 MB at it. The node
    # must stop reading the visitor (bounded memory) and keep serving others.
    stall = registered_peer("stall")
    rss0 = node.rss_kib()
    vis = h.connect(info["entries"]["stall/echo"])
    vis.settimeout(0.5)
    pushed = 0
    blob = b"s" * (1 << 20)
    deadline = time.monotonic() + 10
    while pushed < 256 << 20 and time.monotonic() < deadline:
        try:
            pushed += vis.send(blob)
        except socket.timeout:
            break
    h.check(pushed < 64 << 20, "node kept accepting from a visitor whose agent reads "
            "nothing (%d MB)" % (pushed >> 20))
    growth = node.rss_kib() - rss0
    h.check(growth < 16 * 1024, "node RSS grew %d KiB behind a stalled agent" % growth)
    still_serving("stalled agent")
    vis.close()
    stall.close()
    h.check(node.alive(), "node died")
    svc.close()


h.run(scenario, "bad_input")
