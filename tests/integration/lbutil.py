"""Helpers for the warren-lb integration tests (test_lb_*.py): start a
warren-lb with its ready file, read its admin API, and small backends whose
port survives a restart (a backend that comes back where it was)."""
import json
import os
import socket
import threading

import harness as h

LB = os.environ.get("WARREN_LB", "warren-lb")


def start_lb(c, name, args):
    """Starts warren-lb with <args>; returns (proc, info) where info has
    'listen' (list of (mode, addr)), 'admin' and 'gossip' from the ready file."""
    ready = c.path(name + ".ready")
    if os.path.exists(ready):
        os.unlink(ready)
    argv = [LB, "--ready-file", ready]
    if not any(str(a) == "--admin-addr" for a in args):
        argv += ["--admin-addr", "127.0.0.1:0"]
    argv += list(args)
    p = c.start(name, argv)
    h.wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, "%s ready" % name)
    h.check(p.alive(), "%s exited at start:\n%s" % (name, p.text()))
    info = {"listen": [], "admin": None, "gossip": None}
    with open(ready) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "listen":
                info["listen"].append((parts[1], parts[2]))
            elif parts[0] in ("admin", "gossip"):
                info[parts[0]] = parts[1]
    return p, info


def backends(admin):
    """{set name: {addr: backend dict}} from /v1/backends."""
    st, _, body = h.http_get(admin, "/v1/backends", timeout=5)
    h.check(st == 200, "/v1/backends answered %d" % st)
    return {s["name"]: {b["addr"]: b for b in s["backends"]}
            for s in json.loads(body)["sets"]}


def backend_state(admin, set_name, addr):
    b = backends(admin).get(set_name, {}).get(addr)
    return b["state"] if b else None


def metric(admin, name):
    """The value of the sample whose text before the value is <name>, or None."""
    st, _, body = h.http_get(admin, "/metrics", timeout=5)
    h.check(st == 200, "/metrics answered %d" % st)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class Backend:
    """A TCP server on 127.0.0.1 in threads; handler(conn) serves one client.
    stop() closes the listener and every open client socket; start() binds
    the same port again."""

    def __init__(self, handler, port=0):
        self.handler = handler
        self.port = port
        self.accepted = 0
        self.clients = []
        self.lock = threading.Lock()
        self.sock = None
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        self.sock = s
        threading.Thread(target=self._loop, args=(s,), daemon=True).start()

    def _loop(self, s):
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        s, self.sock = self.sock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self.lock:
            for conn in self.clients:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.clients = []


def tagged_echo(tag):
    """Echoes everything back prefixed once with '<tag>:'; ends after the client's FIN."""
    def handler(conn):
        first = True
        while True:
            b = conn.recv(1 << 16)
            if not b:
                break
            if first:
                conn.sendall(tag.encode() + b":")
                first = False
            conn.sendall(b)
    return handler


def exchange(addr, payload, timeout=10):
    """Connects, sends <payload>, half-closes, reads to EOF; returns the reply."""
    s = h.connect(addr, timeout=timeout)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return h.recv_all(s)
    finally:
        s.close()
