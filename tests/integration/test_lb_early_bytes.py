"""warren-lb keeps what a client sends right behind its ClientHello or
request head (TLS early data, pipelined requests): the client writes the
ClientHello and 1 MiB at once, the sni listener routes by the name and the
backend receives every byte, in order. The same for an http request head
followed by a body. (A client that went on sending while more than the peek
limit was held used to be refused as soon as one read brought it all.)
"""
import hashlib
import socket
import threading

import harness as h
import lbutil as u


def hello(name):
    n = name.encode()
    ext = 2 + 2 + 2 + 1 + 2 + len(n)
    body = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2 + ext
    rec = 4 + body
    return (bytes([22, 3, 1, rec >> 8, rec & 255, 1, 0, body >> 8, body & 255, 3, 3]) +
            b"\x42" * 32 +
            bytes([0, 0, 2, 0x13, 2, 1, 0, ext >> 8, ext & 255, 0, 0, (ext - 4) >> 8,
                   (ext - 4) & 255, (ext - 6) >> 8, (ext - 6) & 255, 0, len(n) >> 8, len(n)]) + n)


class Sink:
    """Reads every connection to the end and keeps a digest of what came."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.got = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        d = hashlib.sha256()
        n = 0
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            d.update(b)
            n += len(b)
        c.close()
        if n > 0:  # health checks connect and close without a byte
            self.got.append((n, d.hexdigest()))


def send_all(addr, payload):
    s = h.connect(addr, timeout=10)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    h.recv_all(s)
    s.close()


def scenario(c):
    sink = Sink()
    lb, info = u.start_lb(c, "lb", ["--listen", "sni:127.0.0.1:0", "--listen", "http:127.0.0.1:0",
                                    "--backend", "sink=%s" % sink.addr,
                                    "--route", "early.test=sink"])
    sni, http = info["listen"][0][1], info["listen"][1][1]
    payload = hello("early.test") + h.pattern(1 << 20)
    send_all(sni, payload)
    want = (len(payload), hashlib.sha256(payload).hexdigest())
    h.wait_for(lambda: want in sink.got, 10, "the backend got the ClientHello and 1 MiB")

    body = h.pattern(600000, seed=1)
    req = (b"POST /up HTTP/1.1\r\nHost: early.test\r\nContent-Length: %d\r\n\r\n" % len(body)
           + body)
    send_all(http, req)
    want = (len(req), hashlib.sha256(req).hexdigest())
    h.wait_for(lambda: want in sink.got, 10, "the backend got the head and the 600 kB body")
    h.check("too_big" not in lb.text(), "nothing refused as too big:\n" + lb.text()[-2000:])


if __name__ == "__main__":
    h.run(scenario, "lb_early_bytes")
