"""warren-lb in tcp mode (issue 5, priority 1): guards balancing, health
checks, passive failover, the connection cap and the relay itself.

Two tagged echo backends behind one warren-lb with a round-robin listener and
a power-of-two-choices listener:
  - round-robin alternates exactly; p2c spreads held connections evenly;
  - a bulk transfer in both directions with half-close arrives intact
    (backpressure: the client reads only after sending everything);
  - a killed backend is marked DOWN within the check window (fall 2 x 200ms)
    and avoided; it comes back UP (rise 2) once it listens again;
then a second warren-lb with slow checks (60s) over [a dead port, a live
backend] shows the passive check: the connect to the dead one fails, the
connection is retried on the other and succeeds, the dead one is marked DOWN
at once; and its --max-conns 3 refuses a 4th connection with a logged reason
while the 3 held ones still work. A third one dials a black hole (a
listener with a full accept queue): --connect-timeout ends the dial and the
connection is retried on the live backend; then it drains on SIGTERM
(--drain-timeout): no new connection, the held one finishes, exit 0.
"""
import hashlib
import signal
import socket
import struct
import threading
import time

import harness as h
import lbutil as u


def tags(addr, n):
    out = []
    for i in range(n):
        r = u.exchange(addr, b"ping %d" % i)
        h.check(r.endswith(b":ping %d" % i), "bad echo %r" % r)
        out.append(r.split(b":")[0].decode())
    return out


def recv_until(s, want, limit=1 << 16):
    """Reads until <want> has arrived (the tag and the echo come in two writes)."""
    got = b""
    while want not in got:
        b = s.recv(limit)
        if not b:
            break
        got += b
    return got


def proxy_v2_reader(conn):
    """Parses a PROXY v2 header (TCP over IPv4), answers "src=IP:PORT dst=IP:PORT"."""
    def need(n):
        b = b""
        while len(b) < n:
            x = conn.recv(n - len(b))
            if not x:
                raise OSError("short header")
            b += x
        return b
    hdr = need(16)
    if hdr[:12] != b"\r\n\r\n\x00\r\nQUIT\n" or hdr[12] != 0x21 or hdr[13] != 0x11:
        conn.sendall(b"bad header %r\n" % hdr)
        return
    body = need(struct.unpack("!H", hdr[14:16])[0])
    src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
    sport, dport = struct.unpack("!HH", body[8:12])
    conn.sendall(b"src=%s:%d dst=%s:%d\n" % (src.encode(), sport, dst.encode(), dport))


def scenario(c):
    a = u.Backend(u.tagged_echo("A"))
    b = u.Backend(u.tagged_echo("B"))
    pp = u.Backend(proxy_v2_reader)
    lb, info = u.start_lb(c, "lb", [
        "--listen", "tcp:127.0.0.1:0,set=web",
        "--listen", "tcp:127.0.0.1:0,set=web,balance=p2c",
        "--listen", "tcp:127.0.0.1:0,set=pp,proxy-v2",
        "--backend", "web=" + a.addr, "--backend", "web=" + b.addr, "--backend", "pp=" + pp.addr,
        "--check-interval", "200ms", "--rise", "2", "--fall", "2",
        "--connect-timeout", "1s"])
    rr, p2c = info["listen"][0][1], info["listen"][1][1]
    admin = info["admin"]
    h.check(info["listen"][0][0] == "tcp", "ready file lists the mode")

    # PROXY v2: the backend learns the client's address and the listener's.
    s = h.connect(info["listen"][2][1])
    r = recv_until(s, b"\n")
    want = "src=%s:%d dst=%s\n" % (s.getsockname()[0], s.getsockname()[1], info["listen"][2][1])
    s.close()
    h.check(r == want.encode(), "PROXY v2 header: got %r want %r" % (r, want))
    h.check(u.metric(admin, "warren_lb_proxy_headers_total") == 1, "PROXY header counted")

    # Round-robin alternates between the two.
    got = tags(rr, 10)
    h.check(sorted(got) == ["A"] * 5 + ["B"] * 5, "round-robin split %r" % got)
    h.check(all(got[i] != got[i + 1] for i in range(9)), "round-robin alternates %r" % got)

    # p2c on open connections: 6 held connections end up 3 and 3.
    held = []
    for i in range(6):
        s = h.connect(p2c)
        s.sendall(b"hold %d" % i)
        r = recv_until(s, b"hold %d" % i)
        h.check(b":hold" in r, "held echo %r" % r)
        held.append((s, r.split(b":")[0].decode()))
    counts = {t: sum(1 for _, x in held if x == t) for t in "AB"}
    h.check(counts == {"A": 3, "B": 3}, "p2c spread %r" % counts)
    bs = u.backends(admin)["web"]
    h.check(bs[a.addr]["active"] == 3 and bs[b.addr]["active"] == 3,
            "active counts %r" % {k: v["active"] for k, v in bs.items()})
    for s, _ in held:
        s.close()
    h.wait_for(lambda: all(x["active"] == 0 for x in u.backends(admin)["web"].values()), 5,
               "active connections back to 0")

    # Bulk, both ways, with half-close: 8 MiB sent before anything is read.
    data = h.pattern(8 << 20, seed=5)
    s = h.connect(rr, timeout=30)
    result = {}

    def reader():
        result["got"] = h.recv_all(s)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(30)
    s.close()
    got = result.get("got", b"")
    h.check(len(got) == len(data) + 2 and
            hashlib.sha256(got[2:]).digest() == hashlib.sha256(data).digest(),
            "bulk echo intact (%d of %d bytes)" % (len(got), len(data) + 2))

    # Kill B: DOWN within the check window, then avoided.
    b.stop()
    h.wait_for(lambda: u.backend_state(admin, "web", b.addr) == "DOWN", 3, "B marked DOWN")
    got = tags(rr, 6)
    h.check(got == ["A"] * 6, "all on A while B is down: %r" % got)
    h.check("ev=backend_state set=web backend=%s" % b.addr in lb.text(), "state change logged")

    # B comes back on the same port: UP again, and used.
    b.start()
    h.wait_for(lambda: u.backend_state(admin, "web", b.addr) == "UP", 3, "B back UP")
    got = tags(rr, 6)
    h.check(sorted(got) == ["A"] * 3 + ["B"] * 3, "both used again %r" % got)
    h.check(u.metric(admin, 'warren_lb_connections_total{listener="%s",mode="tcp",'
                     'outcome="relayed"}' % rr) == 23, "relayed counter")

    # A second balancer: passive check and the connection cap.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    dead_addr = "127.0.0.1:%d" % dead.getsockname()[1]
    lb2, info2 = u.start_lb(c, "lb2", [
        "--listen", "tcp:127.0.0.1:0,set=p", "--backend", "p=" + dead_addr,
        "--backend", "p=" + a.addr, "--check-interval", "60s", "--max-conns", "3"])
    l2, admin2 = info2["listen"][0][1], info2["admin"]
    # The first check ran at start: wait until both have been checked once,
    # then force the passive path by making sure the dead one is UP in the
    # picker's eyes: it is, since fall is 2 and only one check has failed.
    h.wait_for(lambda: all(x["checks_ok"] + x["checks_failed"] >= 1
                           for x in u.backends(admin2)["p"].values()), 5, "first checks")
    h.check(u.backend_state(admin2, "p", dead_addr) == "UP", "one failed check keeps it UP")
    got = tags(l2, 4)
    h.check(got == ["A"] * 4, "every connection reached A: %r" % got)
    h.check(u.backend_state(admin2, "p", dead_addr) == "DOWN", "dead backend marked DOWN")
    h.check(u.metric(admin2, "warren_lb_dial_retries_total") >= 1, "a retry was counted")
    h.check("ev=backend_connect_failed" in lb2.text(), "connect failure logged")

    held = []
    for i in range(3):
        s = h.connect(l2)
        s.sendall(b"x")
        h.check(recv_until(s, b"A:x") == b"A:x", "held connection %d works" % i)
        held.append(s)
    s = h.connect(l2)
    s.settimeout(5)
    try:
        r = s.recv(10)
    except ConnectionResetError:
        r = b""
    h.check(r == b"", "4th connection closed at once, got %r" % r)
    s.close()
    h.wait_for(lambda: "reason=max_conns" in lb2.text(), 5, "cap refusal logged")
    for s in held:  # the held ones are unaffected
        s.sendall(b"y")
        h.check(recv_until(s, b"y") == b"y", "held connection still relays")
        s.close()
    h.wait_for(lambda: u.metric(admin2, "warren_lb_connections_active{listener=\"%s\","
                                "mode=\"tcp\"}" % l2) == 0, 5, "held connections closed")
    h.check(tags(l2, 1) == ["A"], "a new connection works under the cap again")
    h.check(u.metric(admin2, 'warren_lb_connections_total{listener="%s",mode="tcp",'
                     'outcome="max_conns"}' % l2) == 1, "max_conns counted once")
    dead.close()

    # A black hole (a listener whose accept queue is full drops SYNs): the
    # dial times out after --connect-timeout and the retry goes elsewhere.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    hole_addr = "127.0.0.1:%d" % hole.getsockname()[1]
    filler = socket.create_connection(hole.getsockname(), timeout=2)  # takes the one slot
    lb3, info3 = u.start_lb(c, "lb3", [
        "--listen", "tcp:127.0.0.1:0,set=bh", "--backend", "bh=" + hole_addr,
        "--backend", "bh=" + a.addr, "--check-interval", "60s", "--connect-timeout", "300ms",
        "--drain-timeout", "20s"])
    t0 = time.monotonic()
    got = tags(info3["listen"][0][1], 1)
    took = time.monotonic() - t0
    h.check(got == ["A"] and 0.25 < took < 3, "timed-out dial retried on A (%r in %.2fs)"
            % (got, took))
    b3 = u.backends(info3["admin"])["bh"][hole_addr]
    # (last_error may be the first health check's "timeout", which can end
    # just after the dial's.)
    h.check(b3["state"] == "DOWN" and b3["connect_failures"] == 1 and
            "ETIMEDOUT" in lb3.text(),
            "black hole DOWN after the timeout: %r" % b3)
    filler.close()
    hole.close()

    # Drain: after SIGTERM no new connection is accepted, a held one still
    # relays, and the process exits once it closes (well before 20s).
    l3 = info3["listen"][0][1]
    s = h.connect(l3)
    s.sendall(b"d1")
    h.check(recv_until(s, b"A:d1") == b"A:d1", "held before the drain")
    lb3.signal(signal.SIGTERM)
    h.wait_for(lambda: "ev=draining" in lb3.text(), 5, "drain started")
    h.wait_for(lambda: not h._can_connect(*h.split_addr(l3)), 5, "listener closed")
    st, _, _ = h.http_get(info3["admin"], "/readyz")
    h.check(st == 503, "not ready while draining")
    s.sendall(b"d2")
    h.check(recv_until(s, b"d2") == b"d2", "held connection relays during the drain")
    s.close()
    t0 = time.monotonic()
    h.check(lb3.wait(10) == 0, "lb3 exits 0 once drained")
    h.check(time.monotonic() - t0 < 5, "exit soon after the last connection")
    a.stop()
    b.stop()
    h.check(lb.stop() == 0 and lb2.stop() == 0, "clean exit on SIGTERM")


if __name__ == "__main__":
    h.run(scenario, "lb_tcp")
