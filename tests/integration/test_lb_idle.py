"""warren-lb's --idle-timeout: a relayed connection with no byte either way
for that long is closed (and counted as idle_timeout), while one that keeps
talking stays open past it; without the flag an idle connection stays.
"""
import socket
import time

import harness as h
import lbutil as u


def echo_once(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        b = s.recv(len(msg) - len(got))
        if not b:
            raise h.TestFailure("closed after %d of %d bytes" % (len(got), len(msg)))
        got += b
    return got


def closed_within(s, seconds):
    """True when the peer closes <s> within <seconds> (reads nothing else)."""
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False


def scenario(c):
    svc = h.Service(h.echo_handler)
    lb, info = u.start_lb(c, "lb", ["--listen", "tcp:127.0.0.1:0,set=e",
                                    "--backend", "e=%s" % svc.addr, "--idle-timeout", "400ms"])
    front, admin = info["listen"][0][1], info["admin"]
    idle = h.connect(front)
    h.check(echo_once(idle, b"once\n") == b"once\n", "relayed")
    busy = h.connect(front)
    # busy talks every 100 ms for 1.2 s, three times the timeout.
    t_end = time.monotonic() + 1.2
    k = 0
    while time.monotonic() < t_end:
        msg = b"tick %d\n" % k
        h.check(echo_once(busy, msg) == msg, "busy connection still relays (tick %d)" % k)
        k += 1
        time.sleep(0.1)
    h.check(closed_within(idle, 2), "the idle connection was closed by warren-lb")
    h.check(echo_once(busy, b"still here\n") == b"still here\n", "the busy one stays open")
    h.wait_for(lambda: u.metric(admin, 'warren_lb_connections_total{listener="%s",mode="tcp",'
                                'outcome="idle_timeout"}' % front) >= 1, 5,
               "the idle close is counted")
    busy.close()
    idle.close()

    # Without the flag, an idle connection stays.
    lb2, info2 = u.start_lb(c, "lb2", ["--listen", "tcp:127.0.0.1:0,set=e",
                                       "--backend", "e=%s" % svc.addr])
    s = h.connect(info2["listen"][0][1])
    h.check(echo_once(s, b"a\n") == b"a\n", "relayed")
    h.check(not closed_within(s, 1.0), "no idle timeout by default")
    h.check(echo_once(s, b"b\n") == b"b\n", "still relays after 1 s idle")
    s.close()
    svc.close()


if __name__ == "__main__":
    h.run(scenario, "lb_idle")
