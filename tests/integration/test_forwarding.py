"""Forwarding between nodes (issue 4): a visitor reaching a node with no local
agent for its tunnel is carried over a mutual-TLS peer link to a node that
holds the tunnel (known from gossip), and only one hop.

Three gossiping nodes with entry points for t1 (held by one agent, on n1 only)
and t9 (held by nobody). Checks: visitors through n2 and n3 reach the echo
service behind n1 (concurrent ones, and 8 MiB compared byte for byte); the
forwarding counters on /metrics; a tunnel nobody holds is refused at once with
the log line; a TLS client without a client certificate is refused by the
peer listener; a raw peer (with a certificate from the CA) gets its OPEN reset
for hop at the limit, a missing tunnel and a tunnel with no agent, and reaches
the service with a proper one; a holder that resets a stream before answering
makes the entry node replay the visitor's bytes to another holder; once the
agent is gone, forwarded visitors are
refused promptly; a draining holder lets an in-flight forwarded stream finish
and every node exits cleanly.
"""
import hashlib
import json
import re
import signal
import socket
import ssl
import struct
import threading
import time

import harness as h
import wrproto as wp

HOP_MAX = 4
CODE_PROTOCOL, CODE_NO_ROUTE, CODE_HOP_LIMIT = 1, 12, 13


def members(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    h.check(st == 200, "/v1/members answered %d" % st)
    return {m["id"]: m for m in json.loads(body)}


def metric(admin, name, labels=""):
    text = h.http_get(admin, "/metrics", timeout=5)[2].decode()
    want = name + ("{%s}" % labels if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return int(line.split()[1])
    raise h.TestFailure("no %s on /metrics of %s" % (want, admin))


def echo(addr, data, timeout=30):
    """Sends <data> through an entry point to the echo service; returns what came back."""
    s = h.connect(addr, timeout=timeout)
    err = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        got = h.recv_all(s, limit=len(data) + 1)
    finally:
        t.join(timeout)
        s.close()
    h.check(not err, "sending through %s: %r" % (addr, err))
    return got


def refused_fast(addr, limit=1.0):
    """True when a visitor at <addr> is closed without a byte within <limit> s."""
    s = h.connect(addr, timeout=5)
    t0 = time.monotonic()
    try:
        s.settimeout(limit + 2)
        b = s.recv(1)
    except ConnectionResetError:
        b = b""
    except socket.timeout:
        b = None
    finally:
        s.close()
    return b == b"" and time.monotonic() - t0 < limit


def read_stream(peer, sid):
    """Frames of stream <sid> until RST or FIN: returns ('rst', code) or ('fin', bytes)."""
    data = b""
    while True:
        f = peer.read_frame()
        h.check(f is not None, "peer link closed while waiting for stream %d" % sid)
        t, _, fsid, p = f
        if fsid != sid:
            continue
        if t == wp.RST:
            return "rst", struct.unpack(">I", p)[0]
        if t == wp.DATA:
            data += p
        if t == wp.FIN:
            return "fin", data


def open_hdr(svc="echo", hop=1, tunnel="t1"):
    o = {"type": 200, "svc": svc, "client": "198.51.100.7:4242", "hop": hop}
    if tunnel is not None:
        o["tunnel"] = tunnel
    return wp.mp_pack(o)


def scenario(c):
    key = c.cluster_key()
    entries = ["t1/echo", "t9/echo"]
    n1, i1 = c.node(node_id="n1", entries=entries, cluster_key=key)
    n2, i2 = c.node(node_id="n2", entries=entries, cluster_key=key, join=[i1["gossip"]])
    n3, i3 = c.node(node_id="n3", entries=entries, cluster_key=key, join=[i1["gossip"]])
    infos = {"n1": i1, "n2": i2, "n3": i3}
    for nid, info in infos.items():
        h.check(info["peer"] is not None and info["peer"].startswith("127.0.0.1:"),
                "%s's ready file has its peer address: %r" % (nid, info["peer"]))
        st, _, body = h.http_get(info["admin"], "/v1/self")
        h.check(json.loads(body)["addresses"].get("peer") == info["peer"],
                "/v1/self of %s shows the peer address" % nid)

    svc = h.Service(h.echo_handler)
    agent = c.agent(i1["listen"], "t1", {"echo": svc.addr}, name="a1")

    def n1_holds_t1(admin):
        m = members(admin).get("n1")
        return (m is not None and m["state"] == "ALIVE" and "t1" in m["tunnels"]
                and m["addresses"].get("peer") == i1["peer"])

    for nid in ("n2", "n3"):
        h.wait_for(lambda: n1_holds_t1(infos[nid]["admin"]), 15,
                   "%s sees n1 holding t1 (and its peer address)" % nid, interval=0.1)

    # Visitors on n2 and n3 reach the service behind n1; several at once.
    t1_on = {nid: infos[nid]["entries"]["t1/echo"] for nid in infos}
    results, errors = {}, []

    def one(k, addr):
        try:
            data = h.pattern(200000 + k * 1000, seed=k)
            results[k] = echo(addr, data) == data
        except Exception as e:  # reported below, with the others
            errors.append("visitor %d: %r" % (k, e))

    threads = [threading.Thread(target=one, args=(k, t1_on["n2" if k % 2 else "n3"]))
               for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    h.check(not errors, "concurrent forwarded visitors: %s" % errors)
    h.check(len(results) == 12 and all(results.values()),
            "every concurrent forwarded visitor got its bytes back: %r" % results)

    big = h.pattern(8 << 20, seed=99)
    got = echo(t1_on["n3"], big, timeout=60)
    h.check(len(got) == len(big) and hashlib.sha256(got).digest() == hashlib.sha256(big).digest(),
            "8 MiB through n3 -> n1 came back intact (%d bytes)" % len(got))
    h.check(echo(t1_on["n1"], b"local\n") == b"local\n", "n1 still serves t1 locally")

    out2 = metric(i2["admin"], "warren_node_streams_forwarded_total", 'direction="out"')
    out3 = metric(i3["admin"], "warren_node_streams_forwarded_total", 'direction="out"')
    in1 = metric(i1["admin"], "warren_node_streams_forwarded_total", 'direction="in"')
    h.check(out2 >= 6 and out3 >= 7, "forwarded out on n2/n3: %d %d" % (out2, out3))
    h.check(in1 == out2 + out3, "n1 relayed in what n2 and n3 sent: %d vs %d" % (in1, out2 + out3))
    h.check(metric(i1["admin"], "warren_node_streams_forwarded_total", 'direction="out"') == 0,
            "n1 forwarded nothing (it has the agent)")
    h.check(metric(i1["admin"], "warren_node_peer_links") >= 2, "n1 has links from n2 and n3")
    h.check(metric(i2["admin"], "warren_node_peer_links") >= 1, "n2 has a link")
    h.check(n2.count("ev=peer_link_up node=n1") >= 1, "n2 logged its link to n1")

    # Nobody holds t9: refused at once, with the reason logged.
    t9 = i2["entries"]["t9/echo"]
    h.check(refused_fast(t9), "a t9 visitor on n2 is closed within 1 s")
    h.wait_for(lambda: 'tunnel=t9 service=echo' in n2.text() and
               'reason="no live agent for tunnel on any node"' in n2.text(), 5,
               "n2 logged the t9 refusal")
    h.check(metric(i2["admin"], "warren_node_forward_refused_total", 'direction="out"') >= 1,
            "forward_refused out counted on n2")

    # The peer listener wants a client certificate from the cluster CA.
    before = n1.count("ev=peer_tls_failed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(c.ca)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["warren-peer/1"])
    raw = h.connect(i1["peer"], timeout=5)
    refused = False
    try:
        s = ctx.wrap_socket(raw, server_hostname="n1.c1")
        # TLS 1.3: the client may finish before the server checks; the server's
        # alert (or close) then ends the first read.
        s.sendall(wp.frame(wp.OPEN, 1, open_hdr()))
        refused = s.recv(1) == b""
    except (ssl.SSLError, ConnectionError, OSError):
        refused = True
    finally:
        raw.close()
    h.check(refused, "a client without a certificate is refused by the peer listener")
    h.wait_for(lambda: n1.count("ev=peer_tls_failed") > before, 5,
               "n1 logged the failed peer handshake")
    h.check(re.search(r"ev=peer_tls_failed node=- peer=127\.0\.0\.1:\d+ side=accept", n1.text()),
            "the log line names the accepting side")

    # A raw peer with a CA-issued certificate: the hop rule and routing.
    rcrt, rkey = c.path("raw1.crt"), c.path("raw1.key")
    c.ctl("cert", "issue", "--ca-dir", c.ca_dir, "--node-id", "raw1", "--out-cert", rcrt,
          "--out-key", rkey)
    peer = wp.RawPeer(i1["peer"], c.ca, alpn=("warren-peer/1",), sni="n1.c1", cert=rcrt, key=rkey)
    peer.send(wp.frame(wp.OPEN, 1, open_hdr(hop=HOP_MAX)))
    h.check(read_stream(peer, 1) == ("rst", CODE_HOP_LIMIT), "hop at the limit is reset")
    peer.send(wp.frame(wp.OPEN, 3, open_hdr(tunnel=None)))
    h.check(read_stream(peer, 3) == ("rst", CODE_PROTOCOL), "an OPEN without tunnel is reset")
    peer.send(wp.frame(wp.OPEN, 5, open_hdr(tunnel="t9")))
    h.check(read_stream(peer, 5) == ("rst", CODE_NO_ROUTE), "no agent for t9 on n1: no_route")
    peer.send(wp.frame(wp.OPEN, 7, open_hdr(hop=HOP_MAX - 1)))
    peer.send(wp.frame(wp.DATA, 7, b"through a raw peer\n"))
    peer.send(wp.frame(wp.FIN, 7))
    h.check(read_stream(peer, 7) == ("fin", b"through a raw peer\n"),
            "a proper peer OPEN reaches the agent's service")
    peer.close()
    h.wait_for(lambda: n1.count("ev=peer_stream_refused") >= 3, 5, "n1 logged the refusals")
    h.check('code=hop_limit reason="hop limit reached"' in n1.text(), "hop limit logged")
    h.check(metric(i1["admin"], "warren_node_forward_refused_total", 'direction="in"') >= 3,
            "forward_refused in counted on n1")

    # A holder that resets the stream before answering (n4: one stream at a
    # time, and it is busy): the visitor's bytes go to the other holder. n4's
    # agent has weight 255, so n2 nearly always tries n4 first.
    n4, i4 = c.node(node_id="n4", entries=["t1/echo"], cluster_key=key, join=[i1["gossip"]],
                    extra=["--max-streams", "1"])
    c.agent(i4["listen"], "t1", {"echo": svc.addr}, name="a4",
            token=c.token("t1", max_weight=255), extra=["--weight", "255"])
    h.wait_for(lambda: "t1" in members(i4["admin"])["n4"]["tunnels"], 15, "a4 on n4",
               interval=0.05)
    busy = h.connect(i4["entries"]["t1/echo"], timeout=10)
    busy.sendall(b"hold\n")
    h.check(busy.recv(100) == b"hold\n", "n4 serves its own visitor")
    h.wait_for(lambda: "t1" in members(i2["admin"]).get("n4", {}).get("tunnels", {}), 15,
               "n2 sees n4 holding t1", interval=0.1)
    for k in range(6):
        data = h.pattern(3000 + k, seed=100 + k)
        h.check(echo(t1_on["n2"], data) == data, "visitor %d via n2 reached a holder" % k)
    h.check(n2.count("ev=forward_reset") >= 1 and "node=n4 code=refused" in n2.text(),
            "n2 logged n4's reset")
    h.check(re.search(r"ev=forward_retry .* node=n1 ", n2.text()), "n2 retried on n1")
    busy.close()
    n4.signal(signal.SIGTERM)
    h.check(n4.wait(15) == 0 and "loop_not_empty" not in n4.text(), "n4 exited cleanly")
    h.wait_for(lambda: members(i2["admin"])["n4"]["state"] == "LEFT", 10, "n2 sees n4 LEFT",
               interval=0.1)

    # The agent goes away: forwarded visitors are refused promptly, both before
    # and after gossip has told n2 and n3.
    agent.kill9()
    for _ in range(20):
        h.check(refused_fast(t1_on["n2"], limit=1.5), "t1 visitor on n2 refused promptly")
    for nid in ("n2", "n3"):
        h.wait_for(lambda: "t1" not in members(infos[nid]["admin"])["n1"]["tunnels"], 15,
                   "%s learns n1 no longer holds t1" % nid, interval=0.1)
    for nid in ("n2", "n3"):
        h.check(refused_fast(t1_on[nid]), "t1 visitor on %s refused within 1 s" % nid)
    h.check(n3.count('tunnel=t1 service=echo') >= 1 and
            'reason="no live agent for tunnel on any node"' in n3.text(),
            "n3 logged the refusal")

    # Drain: an agent back on n1; a stream forwarded from n3 is in flight when
    # n1 gets SIGTERM. It finishes; n1 then exits, and n3 saw the GOAWAY.
    c.agent(i1["listen"], "t1", {"echo": svc.addr}, name="a2")
    h.wait_for(lambda: "t1" in members(i3["admin"])["n1"]["tunnels"], 15,
               "n3 sees n1 holding t1 again", interval=0.1)
    s = h.connect(t1_on["n3"], timeout=10)
    s.sendall(b"before\n")
    h.check(s.recv(100) == b"before\n", "in-flight stream works before the drain")
    n1.signal(signal.SIGTERM)
    h.wait_for(lambda: "ev=peer_goaway node=n1" in n3.text(), 5, "n3 got n1's GOAWAY")
    s.sendall(b"during\n")
    h.check(s.recv(100) == b"during\n", "in-flight stream still works while n1 drains")
    s.shutdown(socket.SHUT_WR)
    h.check(h.recv_all(s) == b"", "in-flight stream ends cleanly")
    s.close()
    h.check(n1.wait(15) == 0, "n1 exited 0 after its streams finished")
    for nid, p in (("n2", n2), ("n3", n3)):
        p.signal(signal.SIGTERM)
        h.check(p.wait(15) == 0, "%s exited 0" % nid)
    for nid, p in (("n1", n1), ("n2", n2), ("n3", n3)):
        h.check("loop_not_empty" not in p.text(), "%s closed every handle" % nid)
    svc.close()


h.run(scenario, "forwarding")
