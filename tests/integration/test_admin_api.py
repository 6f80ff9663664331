"""The node's admin API (issue 3, "node/ — an admin API") and warrenctl's
first inspection commands, against a real warren-node and warren-agent.

Guards: /healthz and /readyz for probes (readyz turns 503 as soon as the
drain starts, while a stream keeps the node alive), /v1/self and /v1/tunnels
(an agent shows up with its weight once registered), /metrics in valid
Prometheus text with HELP/TYPE for every family and counters that move with
traffic, 404/405/400/431 answers that never take the server down, the cap of
64 connections, keep-alive and pipelining with backpressure, the 10 s
deadline for idle and slow clients, and `warrenctl status|tunnels [--json]` including
exit code 2 for an unreachable node.
"""
import json
import re
import signal
import socket
import subprocess
import time

import harness as h

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                    r'(-?[0-9.]+(e[+-]?[0-9]+)?|NaN|[+-]Inf)$')


def parse_metrics(text):
    """Checks the exposition format; returns {(name, labels): value}."""
    helps, types, out = set(), {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            h.check(len(parts) == 4 and parts[3] in ("counter", "gauge"), "bad TYPE: %r" % line)
            types[parts[2]] = parts[3]
            continue
        h.check(not line.startswith("#"), "unexpected comment %r" % line)
        m = SAMPLE.match(line)
        h.check(m, "not a Prometheus sample line: %r" % line)
        name = m.group(1)
        h.check(name in helps and name in types, "no HELP/TYPE before %r" % line)
        if types[name] == "counter":
            h.check(name.endswith("_total"), "counter %s without _total" % name)
        out[(name, m.group(2) or "")] = float(m.group(5))
    return out


def metrics(admin):
    st, hdr, body = h.http_get(admin, "/metrics")
    h.check(st == 200, "/metrics answered %d" % st)
    h.check(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
            "/metrics content type %r" % hdr.get("content-type"))
    return parse_metrics(body.decode())


def raw_request(admin, data, timeout=10):
    """Sends raw bytes; returns everything the server sends until it closes."""
    s = h.connect(admin, timeout=timeout)
    s.sendall(data)
    try:
        return h.recv_all(s)
    except ConnectionResetError:
        return b""
    finally:
        s.close()


def ctl(*args):
    r = subprocess.run([h.WARRENCTL] + list(args), capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def tunnels(admin):
    st, hdr, body = h.http_get(admin, "/v1/tunnels")
    h.check(st == 200 and hdr.get("content-type") == "application/json", "/v1/tunnels %d" % st)
    return json.loads(body)


def echo_once(entry, payload):
    s = h.connect(entry)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    got = h.recv_all(s)
    s.close()
    h.check(got == payload, "echo through the tunnel returned %d of %d bytes" % (len(got),
                                                                                  len(payload)))


def scenario(c):
    svc = h.Service(h.echo_handler)
    # A short keepalive period so that an RTT is measured within the test.
    node, info = c.node(entries=["t1/echo"], extra=["--ping-interval", "100ms"])
    admin = info["admin"]
    h.check(admin is not None and not admin.endswith(":0"), "ready file admin line: %r" % admin)
    entry = info["entries"]["t1/echo"]

    # Opened now, checked at the end: an idle connection and one that never
    # finishes its request head are both closed after the 10 s deadline.
    t_open = time.monotonic()
    idle = h.connect(admin)
    slow = h.connect(admin)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

    st, _, body = h.http_get(admin, "/healthz")
    h.check((st, body) == (200, b"ok\n"), "/healthz: %d %r" % (st, body))
    st, _, body = h.http_get(admin, "/readyz")
    h.check(st == 200, "/readyz before drain: %d %r" % (st, body))

    st, _, body = h.http_get(admin, "/v1/self")
    me = json.loads(body)
    h.check(st == 200 and me["node_id"] == "n1" and me["cluster"] == c.cluster
            and me["state"] == "serving", "/v1/self: %r" % me)
    h.check(me["addresses"]["listen"] == info["listen"] and me["addresses"]["admin"] == admin
            and me["addresses"]["entries"][0]["addr"] == entry, "/v1/self addresses: %r" % me)
    h.check(me["tls"]["suite"].startswith("TLS13-"), "/v1/self tls: %r" % me["tls"])
    h.check(tunnels(admin)["tunnels"] == {}, "tunnels before any agent")

    # An agent registers: /v1/tunnels lists it with its weight.
    c.agent(info["listen"], "t1", {"echo": svc.addr}, name="a1", extra=["--weight", "3"])

    def listed():
        t = tunnels(admin)["tunnels"].get("t1")
        return t if t and t["agents"] and t["agents"][0]["state"] == "READY" else None
    t1 = h.wait_for(listed, 15, "agent a1 in /v1/tunnels")
    a = t1["agents"][0]
    h.check(a["agent_id"] == "a1" and a["weight"] == 3 and t1["total_weight"] == 3
            and a["peer"].startswith("127.0.0.1:") and a["conn"] > 0
            and a["streams_open"] == 0, "agent entry: %r" % t1)

    def rtt():
        t = tunnels(admin)["tunnels"]["t1"]["agents"][0]
        return t["rtt_us"] if t["rtt_us"] > 0 else None
    h.wait_for(rtt, 10, "a keepalive round trip in /v1/tunnels")

    # Metrics: valid format, and the counters move with traffic.
    m0 = metrics(admin)
    h.check(m0[("warren_node_agents_connected", "")] == 1, "agents_connected %r" %
            m0[("warren_node_agents_connected", "")])
    h.check(m0[("warren_node_tunnels", "")] == 1, "tunnels gauge")
    h.check(m0[("warren_node_agents_accepted_total", "")] == 1, "agents_accepted")
    build = [k for k in m0 if k[0] == "warren_build_info"]
    h.check(len(build) == 1 and 'version="' in build[0][1], "build info: %r" % build)
    aes = "AES" in me["tls"]["suite"]
    for i in range(3):
        echo_once(entry, h.pattern(100000, seed=i))

    def moved():
        m = metrics(admin)
        ok = (m[("warren_node_streams_opened_total", "")] >= 3 and
              m[("warren_node_streams_open", "")] == 0 and
              m[("warren_node_relay_bytes_total", '{direction="up"}')] >= 300000 and
              m[("warren_node_relay_bytes_total", '{direction="down"}')] >= 300000 and
              m[("warren_tls_handshakes_total", '{result="ok"}')] >= 1)
        if aes:
            ok = ok and m[("warren_tls_device_encrypt_total", "")] > 0 and \
                m[("warren_tls_device_decrypt_total", "")] > 0
        return m if ok else None
    h.wait_for(moved, 10, "metrics counting the traffic")

    # Errors: 404, 405, 400 (closes), and keep-alive across requests.
    st, _, _ = h.http_get(admin, "/nope")
    h.check(st == 404, "/nope: %d" % st)
    st, hdr, _ = h.http_get(admin, "/metrics", method="POST")
    h.check(st == 405 and hdr.get("allow") == "GET", "POST /metrics: %d %r" % (st, hdr))
    got = raw_request(admin, b"THIS IS NOT HTTP\r\n\r\n")
    h.check(got.startswith(b"HTTP/1.1 400 "), "garbage got %r" % got[:60])
    got = raw_request(admin, b"GET /healthz HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n"
                      b"Connection: close\r\n\r\n")
    h.check(got.count(b"HTTP/1.1 200 OK") == 2 and got.endswith(b"ready\n"),
            "pipelined keep-alive: %r" % got)

    # A client that pipelines far more than it reads: the node stops reading
    # past its output cap and resumes as the client catches up; every request
    # is answered, in order.
    n_req = 3000
    got = raw_request(admin, b"GET /metrics HTTP/1.1\r\n\r\n" * n_req +
                      b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", timeout=60)
    h.check(got.count(b"HTTP/1.1 200 OK\r\n") == n_req + 1 and got.endswith(b"\r\n\r\nok\n"),
            "pipelined %d: %d answers" % (n_req, got.count(b"HTTP/1.1 200 OK\r\n")))

    # An oversized head: 431 (or 400), and the node keeps serving.
    got = raw_request(admin, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    h.check(got.startswith(b"HTTP/1.1 431 ") or got.startswith(b"HTTP/1.1 400 ") or got == b"",
            "oversized head got %r" % got[:80])
    h.check(h.http_get(admin, "/healthz")[0] == 200, "healthz after oversized head")

    # At most 64 connections at once: the 65th is closed unanswered.
    held = []
    for _ in range(64 - 2):  # idle and slow hold two already
        s = h.connect(admin)
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        f = s.makefile("rb")
        h.check(f.readline().startswith(b"HTTP/1.1 200"), "held connection not served")
        held.append((s, f))
    extra = raw_request(admin, b"GET /healthz HTTP/1.1\r\n\r\n")
    h.check(extra == b"", "65th connection was served: %r" % extra[:40])
    for s, f in held:
        f.close()
        s.close()
    h.wait_for(lambda: raw_request(admin, b"GET /healthz HTTP/1.0\r\n\r\n")
               .startswith(b"HTTP/1.1 200"), 10, "serving again after the 64 closed")

    # warrenctl.
    rc, out, err = ctl("tunnels", "--node", admin)
    h.check(rc == 0, "warrenctl tunnels: %d %s" % (rc, err))
    lines = out.splitlines()
    h.check(lines[0].split() == ["TUNNEL", "AGENT", "WEIGHT", "PEER", "STATE", "RTT", "STREAMS"],
            "tunnels header: %r" % out)
    row = lines[1].split()
    h.check(row[:3] == ["t1", "a1", "3"] and row[3] == a["peer"] and row[4] == "READY"
            and re.match(r"^[0-9.]+(us|ms|s)$", row[5]) and row[6] == "0",
            "tunnels row: %r" % out)
    rc, out, err = ctl("tunnels", "--node", admin, "--json")
    h.check(rc == 0 and json.loads(out)["tunnels"]["t1"]["agents"][0]["agent_id"] == "a1",
            "warrenctl tunnels --json: %d %r %s" % (rc, out, err))
    rc, out, err = ctl("status", "--node", admin)
    h.check(rc == 0 and re.search(r"^node +n1$", out, re.M) and
            re.search(r"^state +serving$", out, re.M), "warrenctl status: %d %r %s" % (rc, out, err))
    # A port nobody listens on (bound then closed: refused at once).
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    rc, out, err = ctl("tunnels", "--node", dead)
    h.check(rc == 2 and "cannot reach" in err, "unreachable node: %d %r" % (rc, err))
    rc, out, err = ctl("tunnels", "--node", "not-an-address")
    h.check(rc == 1, "bad --node: %d %r" % (rc, err))

    for name, sock in (("idle", idle), ("slow", slow)):
        sock.settimeout(20)
        try:
            got = sock.recv(100)
        except ConnectionResetError:
            got = b""
        waited = time.monotonic() - t_open
        h.check(got == b"" and waited >= 9, "%s connection: %r after %.1fs" % (name, got, waited))
        sock.close()

    # Drain: an open visitor stream keeps the node alive; readyz turns 503,
    # healthz stays 200, and the node exits once the stream ends.
    v = h.connect(entry)
    v.sendall(b"ping")
    h.check(v.recv(4) == b"ping", "stream before the drain")
    node.signal(signal.SIGTERM)
    h.wait_for(lambda: h.http_get(admin, "/readyz")[0] == 503, 10, "/readyz 503 while draining")
    h.check(h.http_get(admin, "/healthz")[0] == 200, "/healthz while draining")
    st, _, body = h.http_get(admin, "/v1/self")
    h.check(json.loads(body)["state"] == "draining", "/v1/self while draining: %r" % body)
    h.check(metrics(admin)[("warren_node_draining", "")] == 1, "draining gauge")
    v.close()
    h.check(node.wait(15) == 0, "node exit status after the drain")


h.run(scenario, "admin_api")
