"""100 MB each way through node -> TLS tunnel -> agent -> service, with hashes.

Guards the data path of issue 2: bytes arrive intact in both directions,
half-close passes through (the visitor's FIN reaches the service, which only
then answers), and the TLS records go through the libsodium crypto device
(the node's exit stats count its operations).
"""
import hashlib
import re
import socket
import threading

import harness as h

SIZE = 100 * 1024 * 1024


def sink_then_send(c):
    """Hashes everything until EOF, then sends the digest and SIZE bytes back."""
    d = hashlib.sha256()
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        d.update(b)
    c.sendall(d.digest())
    c.sendall(h.pattern(SIZE, seed=2))


def scenario(c):
    svc = h.Service(sink_then_send)
    node, info = c.node(entries=["t1/bulk"])
    agent = c.agent(info["listen"], "t1", {"bulk": svc.addr}, name="a1")
    h.wait_for(lambda: node.count("ev=agent_ready") >= 1, 15, "agent registered")

    up = h.pattern(SIZE, seed=1)
    s = h.connect(info["entries"]["t1/bulk"], timeout=60)
    got = []
    t = threading.Thread(target=lambda: got.append(h.recv_all(s)))
    t.start()
    s.sendall(up)
    s.shutdown(socket.SHUT_WR)  # half-close: the service answers only after EOF
    t.join(120)
    h.check(not t.is_alive(), "download did not finish")
    s.close()
    data = got[0]
    h.check(len(data) == 32 + SIZE, "received %d bytes, expected %d" % (len(data), 32 + SIZE))
    h.check(data[:32] == hashlib.sha256(up).digest(), "upload hash differs")
    h.check(hashlib.sha256(data[32:]).digest() == hashlib.sha256(h.pattern(SIZE, seed=2)).digest(),
            "download hash differs")

    h.check(node.stop() == 0, "node exit status")
    agent.stop()
    stats = re.search(r"ev=exit_stats .*", node.text())
    h.check(stats is not None, "node printed no exit stats")
    line = stats.group(0)
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if fields.get("tls_suite") == "TLS13-AES256-GCM-SHA384":
        # 200 MB crossed the node's TLS side: both directions through the device.
        h.check(int(fields["tls_dev_bytes"]) >= 2 * SIZE,
                "crypto device saw only %s bytes" % fields["tls_dev_bytes"])
        h.check(int(fields["tls_dev_encrypt"]) >= SIZE // 16384, "too few device encryptions")
        h.check(int(fields["tls_dev_decrypt"]) >= SIZE // 16384, "too few device decryptions")
    h.check(fields.get("bytes_up") == str(SIZE), "node counted %s bytes up" % fields.get("bytes_up"))
    svc.close()


h.run(scenario, "tunnel_bulk")
