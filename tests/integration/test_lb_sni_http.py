"""warren-lb in sni and http mode (issue 5, priority 2): guards routing by
name without terminating TLS, the refusals, and the peek bounds.

sni: two `openssl s_server` backends with different self-signed
certificates; `openssl s_client -servername` and `curl --resolve` through
warren-lb verify the backend's own certificate (so TLS was not terminated),
an exact name and a *.suffix wildcard each reach their backend, and an
unknown name gets the TLS alert unrecognized_name. http: two small HTTP/1.1
servers that answer with their name; curl by Host reaches the right one, an
unknown Host gets the 404 page, a set whose backends are all down gets 503,
two requests on one keep-alive connection both succeed. Bad input: a
malformed ClientHello, plain text on the sni listener, an oversize head, and
clients that send nothing (peek timeout, 408 in http) are closed with a
logged reason while a well-behaved client is served meanwhile. The route
cache counts hits and negative hits.
"""
import http.client
import http.server
import os
import socket
import subprocess
import threading

import harness as h
import lbutil as u


def make_cert(c, name, cn):
    crt, key = c.path(name + ".crt"), c.path(name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn],
                   check=True, capture_output=True, timeout=30)
    return crt, key


def s_server(c, name, crt, key):
    port = h.free_port()
    p = c.start(name, ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", crt,
                       "-key", key, "-www", "-naccept", "1000"])
    h.wait_for(lambda: h._can_connect("127.0.0.1", port) or not p.alive(), 10,
               "%s listening" % name)
    h.check(p.alive(), "%s exited:\n%s" % (name, p.text()))
    return "127.0.0.1:%d" % port


def s_client(addr, servername, cafile):
    r = subprocess.run(["openssl", "s_client", "-connect", addr, "-servername", servername,
                        "-CAfile", cafile, "-verify_return_error", "-brief"],
                       input=b"", capture_output=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


class NameHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("%s %s\n" % (self.server.name, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class NameServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name):
        super().__init__(("127.0.0.1", 0), NameHandler)
        self.name = name
        self.conns = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        r = super().get_request()
        self.conns += 1
        return r

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.server_address[1]


def closed_without_data(addr, payload, timeout=10):
    """Sends <payload> and returns what came back before the close."""
    s = h.connect(addr, timeout=timeout)
    try:
        if payload:
            s.sendall(payload)
        return h.recv_all(s)
    except ConnectionResetError:
        return b""
    finally:
        s.close()


def scenario(c):
    shop_crt, shop_key = make_cert(c, "shop", "shop.example.com")
    apps_crt, apps_key = make_cert(c, "apps", "x.apps.example.com")
    shop = s_server(c, "shop-tls", shop_crt, shop_key)
    apps = s_server(c, "apps-tls", apps_crt, apps_key)
    web1, web2 = NameServer("web1"), NameServer("web2")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_addr = "127.0.0.1:%d" % dead.getsockname()[1]

    lb, info = u.start_lb(c, "lb", [
        "--listen", "sni:127.0.0.1:0", "--listen", "http:127.0.0.1:0",
        "--backend", "shop=" + shop, "--backend", "apps=" + apps,
        "--backend", "web1=" + web1.addr, "--backend", "web2=" + web2.addr,
        "--backend", "gone=" + dead_addr,
        "--route", "shop.example.com=shop", "--route", "*.apps.example.com=apps",
        "--route", "site.test=web1", "--route", "*.other.test=web2", "--route", "down.test=gone",
        "--peek-timeout", "1s", "--check-interval", "200ms"])
    sni, web = info["listen"][0][1], info["listen"][1][1]
    admin = info["admin"]
    host, port = h.split_addr(sni)

    # TLS goes through untouched: the client verifies each backend's own cert.
    rc, out = s_client(sni, "shop.example.com", shop_crt)
    h.check(rc == 0 and "shop.example.com" in out, "s_client to shop: rc=%d\n%s" % (rc, out))
    rc, out = s_client(sni, "x.apps.example.com", apps_crt)
    h.check(rc == 0 and "x.apps.example.com" in out, "s_client to apps: rc=%d\n%s" % (rc, out))
    # The wrong CA fails: warren-lb did not present a certificate of its own.
    rc, out = s_client(sni, "shop.example.com", apps_crt)
    h.check(rc != 0, "shop's certificate does not verify against apps' CA")
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve",
                        "shop.example.com:%d:%s" % (port, host), "--cacert", shop_crt,
                        "https://shop.example.com:%d/" % port], capture_output=True, timeout=20)
    h.check(r.returncode == 0 and b"cipher" in r.stdout.lower(),
            "curl through sni: rc=%d out=%r err=%r" % (r.returncode, r.stdout[:200], r.stderr))

    # Unknown name: the alert, and the reason in the log.
    rc, out = s_client(sni, "nope.example.com", shop_crt)
    h.check(rc != 0 and "unrecognized name" in out, "unknown SNI gets the alert:\n%s" % out)
    h.wait_for(lambda: "ev=route_unknown" in lb.text() and "name=nope.example.com" in lb.text(),
               5, "route_unknown logged")

    # http by Host.
    def get(hostname, path="/"):
        conn = http.client.HTTPConnection(*h.split_addr(web), timeout=10)
        try:
            conn.request("GET", path, headers={"Host": hostname})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()
    st, body = get("site.test", "/a")
    h.check(st == 200 and body == b"web1 /a\n", "site.test -> web1: %d %r" % (st, body))
    st, body = get("x.other.test:8080", "/b")
    h.check(st == 200 and body == b"web2 /b\n", "wildcard with a port -> web2: %d %r" % (st, body))
    st, body = get("unknown.test")
    h.check(st == 404 and b"no route" in body, "unknown host -> 404: %d %r" % (st, body))
    st, body = get("down.test")
    h.check(st == 503, "all backends down -> 503: %d %r" % (st, body))
    h.wait_for(lambda: u.backend_state(admin, "gone", dead_addr) == "DOWN", 3, "dead one DOWN")
    st, body = get("down.test")
    h.check(st == 503 and b"no healthy backend" in body, "503 page: %d %r" % (st, body))
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Host: site.test",
                        "http://%s/curl" % web], capture_output=True, timeout=20)
    h.check(r.stdout == b"web1 /curl\n", "curl by Host: %r %r" % (r.stdout, r.stderr))

    # Keep-alive: two requests on one connection, one backend connection.
    before = web1.conns
    conn = http.client.HTTPConnection(*h.split_addr(web), timeout=10)
    for path in ("/k1", "/k2"):
        conn.request("GET", path, headers={"Host": "site.test"})
        r = conn.getresponse()
        h.check(r.status == 200 and r.read() == ("web1 %s\n" % path).encode(), "keep-alive " + path)
    conn.close()
    h.check(web1.conns == before + 1, "one backend connection for both requests")

    # Bad input, each closed with a reason; a good client is served meanwhile.
    slow_sni = h.connect(sni)  # sends nothing: the peek times out
    slow_web = h.connect(web)
    slow_web.sendall(b"GET / HTTP/1.1\r\nHost: si")  # half a head
    got = closed_without_data(sni, b"\x16\x03\x01\x00\x30" + b"\x01" + b"\x00" * 47)
    h.check(got == b"", "malformed ClientHello closed, got %r" % got)
    got = closed_without_data(sni, b"GET / HTTP/1.0\r\n\r\n")
    h.check(got == b"", "plain text on sni closed, got %r" % got)
    got = closed_without_data(web, b"GET / HTTP/1.1\r\nHost: site.test\r\nX-Big: " + b"a" * 20000)
    h.check(got.startswith(b"HTTP/1.1 431"), "oversize head -> 431: %r" % got[:60])
    got = closed_without_data(web, b"BREW /pot HTCPCP/1.0\r\n\r\n")
    h.check(got.startswith(b"HTTP/1.1 400"), "not HTTP -> 400: %r" % got[:60])
    st, body = get("site.test", "/meanwhile")
    h.check(st == 200 and body == b"web1 /meanwhile\n", "good client served meanwhile")
    slow_sni.settimeout(5)
    slow_web.settimeout(5)
    h.check(h.recv_all(slow_sni) == b"", "slow sni client closed by the peek timeout")
    got = h.recv_all(slow_web)
    h.check(got.startswith(b"HTTP/1.1 408"), "slow http client -> 408: %r" % got[:60])
    slow_sni.close()
    slow_web.close()
    text = lb.text()
    for reason in ("malformed", "too_big", "peek_timeout", "no_route", "no_backend"):
        h.check("ev=conn_refused" in text and "reason=%s" % reason in text,
                "refusal with reason=%s logged" % reason)

    # The route cache: repeated names hit; repeated unknown names hit negatively.
    for _ in range(3):
        get("site.test")
        get("unknown.test")
    h.check(u.metric(admin, "warren_lb_route_cache_hits_total") >= 3, "cache hits counted")
    h.check(u.metric(admin, "warren_lb_route_cache_negative_hits_total") >= 3,
            "negative hits counted")
    h.check(u.metric(admin, 'warren_lb_connections_total{listener="%s",mode="sni",'
                     'outcome="no_route"}' % sni) == 1, "sni no_route counted")
    web1.shutdown()
    web2.shutdown()
    dead.close()
    h.check(lb.stop() == 0, "clean exit")


if __name__ == "__main__":
    h.run(scenario, "lb_sni_http")
