"""A raw warren peer for bad-input tests: TLS 1.3 (Python's ssl), frames and a
minimal msgpack codec (maps, strings, unsigned ints, arrays, bytes), so a
test can send exactly the malformed input it wants."""
import socket
import ssl
import struct

import harness as h

DATA, OPEN, FIN, RST, WINDOW, PING, PONG, GOAWAY, CONTROL = range(9)
HELLO, WELCOME, ERROR = 100, 101, 102


def mp_pack(o):
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if 0 <= o < 1 << 8:
            return b"\xcc" + struct.pack(">B", o)
        if 0 <= o < 1 << 16:
            return b"\xcd" + struct.pack(">H", o)
        if 0 <= o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        if 0 <= o < 1 << 64:
            return b"\xcf" + struct.pack(">Q", o)
        if -32 <= o < 0:
            return struct.pack(">b", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 1 << 8:
            return b"\xd9" + struct.pack(">B", len(b)) + b
        if len(b) < 1 << 16:
            return b"\xda" + struct.pack(">H", len(b)) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, bytes):
        if len(o) < 1 << 8:
            return b"\xc4" + struct.pack(">B", len(o)) + o
        return b"\xc6" + struct.pack(">I", len(o)) + o
    if isinstance(o, (list, tuple)):
        head = bytes([0x90 | len(o)]) if len(o) < 16 else b"\xdc" + struct.pack(">H", len(o))
        return head + b"".join(mp_pack(x) for x in o)
    if isinstance(o, dict):
        head = bytes([0x80 | len(o)]) if len(o) < 16 else b"\xde" + struct.pack(">H", len(o))
        return head + b"".join(mp_pack(k) + mp_pack(v) for k, v in o.items())
    raise TypeError(type(o))


def mp_unpack(b, i=0):
    """Returns (object, next index). Enough for WELCOME and ERROR."""
    t = b[i]
    if t < 0x80:
        return t, i + 1
    if 0x80 <= t <= 0x8F or t in (0xDE, 0xDF):
        if t <= 0x8F:
            n, i = t & 0x0F, i + 1
        elif t == 0xDE:
            n, i = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
        else:
            n, i = struct.unpack(">I", b[i + 1:i + 5])[0], i + 5
        d = {}
        for _ in range(n):
            k, i = mp_unpack(b, i)
            v, i = mp_unpack(b, i)
            d[k] = v
        return d, i
    if 0x90 <= t <= 0x9F or t in (0xDC, 0xDD):
        if t <= 0x9F:
            n, i = t & 0x0F, i + 1
        elif t == 0xDC:
            n, i = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
        else:
            n, i = struct.unpack(">I", b[i + 1:i + 5])[0], i + 5
        out = []
        for _ in range(n):
            v, i = mp_unpack(b, i)
            out.append(v)
        return out, i
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        w = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        raw = b[i + 1 + w:i + 1 + w + n]
        return (raw.decode() if t >= 0xD9 else raw), i + 1 + w + n
    if t in (0xCC, 0xCD, 0xCE, 0xCF):
        w = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[t]
        return int.from_bytes(b[i + 1:i + 1 + w], "big"), i + 1 + w
    if t == 0xC0:
        return None, i + 1
    if t in (0xC2, 0xC3):
        return t == 0xC3, i + 1
    raise ValueError("msgpack type 0x%02x not supported here" % t)


def frame(ftype, stream, payload=b"", flags=0, length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + struct.pack(">BBI", ftype, flags, stream) + payload


def hello(tunnel, token, agent="raw", weight=1, services=("svc",), version=1, role="agent"):
    return {"type": HELLO, "v": version, "role": role, "tunnel": tunnel, "agent": agent,
            "token": token, "weight": weight, "svc": list(services)}


class RawPeer:
    """A TLS client speaking warren frames by hand."""

    def __init__(self, addr, ca, alpn=("warren/1",), sni="c1", timeout=10, cert=None, key=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(ca)
        ctx.check_hostname = False
        if cert is not None:  # a client certificate (node-to-node peer links)
            ctx.load_cert_chain(cert, key)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        raw = h.connect(addr, timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname=sni)
        self.buf = b""

    def send(self, b):
        self.s.sendall(b)

    def control(self, obj_or_bytes):
        p = obj_or_bytes if isinstance(obj_or_bytes, bytes) else mp_pack(obj_or_bytes)
        self.send(frame(CONTROL, 0, p))

    def read_frame(self):
        """Next frame as (type, flags, stream, payload), or None at EOF/reset.
        PINGs from the node are answered here and not returned."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    t, fl, sid = struct.unpack(">BBI", self.buf[3:9])
                    p = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if t == PING:
                        self.send(frame(PONG, 0, p))
                        continue
                    return t, fl, sid, p
            try:
                b = self.s.recv(1 << 16)
            except (ConnectionError, ssl.SSLError, OSError):
                return None
            if not b:
                return None
            self.buf += b

    def read_control(self):
        """Next CONTROL message decoded, skipping PING (answered) and others."""
        while True:
            f = self.read_frame()
            if f is None:
                return None
            if f[0] == CONTROL:
                return mp_unpack(f[3])[0]

    def closed(self):
        """True once the peer has closed: reads until EOF (answers PINGs)."""
        while True:
            if self.read_frame() is None:
                return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
