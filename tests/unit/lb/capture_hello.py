#!/usr/bin/env python3
"""Captures the first ClientHello a TLS client sends, for lb_hellos.h and
lb/fuzz/corpus/sni. Listens on an ephemeral loopback port, runs the client
command with PORT replaced by that port, and writes every record of the
handshake message (nothing more) to OUT. Example:

  capture_hello.py hello.bin openssl s_client -tls1_3 -servername a.example \\
      -connect 127.0.0.1:PORT
"""
import socket
import subprocess
import sys


def hello_end(buf):
    """Bytes up to the end of the first handshake message, or None."""
    pos, hs = 0, b""
    while len(buf) >= pos + 5:
        n = int.from_bytes(buf[pos + 3:pos + 5], "big")
        if len(buf) < pos + 5 + n:
            return None
        hs += buf[pos + 5:pos + 5 + n]
        pos += 5 + n
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            return pos
    return None


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = str(srv.getsockname()[1])
    client = subprocess.Popen([c.replace("PORT", port) for c in cmd],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        buf = b""
        while hello_end(buf) is None:
            data = conn.recv(65536)
            if not data:
                sys.exit("client closed before a whole ClientHello")
            buf += data
        with open(out, "wb") as f:
            f.write(buf[:hello_end(buf)])
        conn.close()
    finally:
        client.kill()
        client.wait()


if __name__ == "__main__":
    main()
