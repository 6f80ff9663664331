"""Two agents on one tunnel with weights 1 and 3 split the visitors about
1:3; a third agent with weight 255 then takes every visitor; when it is
killed (kill -9) its open stream fails and new visitors reach the others.

Guards the node's weighted pool (issue 2): weighted random choice, 255
exclusivity, and a member that fails leaving the pool at once.
"""
import re
import signal

import harness as h

N = 400


def ask(addr):
    s = h.connect(addr)
    s.sendall(b"who\n")
    name = s.makefile("rb").readline().strip().decode()
    s.close()
    return name


def scenario(c):
    a_svc = h.Service(h.name_handler("a"))
    b_svc = h.Service(h.name_handler("b"))
    x_svc = h.Service(h.name_handler("x"))
    node, info = c.node(entries=["t1/who"])
    entry = info["entries"]["t1/who"]
    c.agent(info["listen"], "t1", {"who": a_svc.addr}, name="a", extra=["--weight", "1"])
    c.agent(info["listen"], "t1", {"who": b_svc.addr}, name="b", extra=["--weight", "3"])
    h.wait_for(lambda: node.count("ev=agent_ready") >= 2, 15, "two agents registered")

    counts = {"a": 0, "b": 0}
    for _ in range(N):
        counts[ask(entry)] += 1
    share_b = counts["b"] / N
    # Expected 0.75; 400 draws give a standard deviation of ~0.022.
    h.check(0.65 <= share_b <= 0.85, "weight 1:3 split was %r" % counts)

    x = c.agent(info["listen"], "t1", {"who": x_svc.addr}, name="x", extra=["--weight", "255"])
    h.wait_for(lambda: node.count("ev=agent_ready") >= 3, 15, "weight-255 agent registered")
    seen = {ask(entry) for _ in range(100)}
    h.check(seen == {"x"}, "weight 255 did not take everything: %r" % seen)

    # An open stream through x fails when x dies; new visitors go to a and b.
    s = h.connect(entry)
    s.sendall(b"who\n")
    f = s.makefile("rb")
    h.check(f.readline().strip() == b"x", "stream not through x")
    x.kill9()
    h.wait_for(lambda: re.search(r"ev=agent_gone .*agent=x ", node.text()), 15,
               "node noticed x is gone")
    s.settimeout(10)
    rest = f.read()
    h.check(rest == b"", "stream through the dead agent still gave data")
    s.close()
    seen = {ask(entry) for _ in range(50)}
    h.check(seen <= {"a", "b"} and seen, "after x died visitors went to %r" % seen)
    node.signal(signal.SIGUSR1)


h.run(scenario, "pool_weights")
