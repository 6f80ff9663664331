"""The node restarts (SIGTERM, then started again on the same port): the
agent notices, backs off, reconnects by itself, and visitors get through
again. Also: a visitor for a tunnel with no live agent is closed promptly.

Guards the agent's reconnect loop and the node's clean shutdown (issue 2).
"""
import re
import time

import harness as h


def ask(addr):
    s = h.connect(addr)
    s.sendall(b"ping\n")
    line = s.makefile("rb").readline()
    s.close()
    return line


def scenario(c):
    svc = h.Service(h.name_handler("svc"))
    node, info = c.node(entries=["t1/who"], node_id="n1")
    listen = info["listen"]
    agent = c.agent(listen, "t1", {"who": svc.addr}, name="a1")
    h.wait_for(lambda: node.count("ev=agent_ready") >= 1, 15, "agent registered")
    h.check(ask(info["entries"]["t1/who"]) == b"svc\n", "first request")

    h.check(node.stop() == 0, "node did not exit cleanly on SIGTERM")
    h.check("ev=stopped" in node.text(), "node did not log its stop")
    h.wait_for(lambda: "ev=link_closed" in agent.text(), 10, "agent saw the node go")

    # Same listen port, new entry port: the agent must come back on its own.
    node2, info2 = c.node(entries=["t1/who"], node_id="n1", listen=listen)
    h.wait_for(lambda: node2.count("ev=agent_ready") >= 1, 20, "agent reconnected by itself")
    h.check(ask(info2["entries"]["t1/who"]) == b"svc\n", "request after restart")
    h.check(len(re.findall("ev=tunnel_ready", agent.text())) == 2, "agent registered twice")

    # No live agent: the visitor is closed at once, with a logged reason.
    agent.stop()
    h.wait_for(lambda: "ev=agent_gone" in node2.text(), 10, "node saw the agent leave")
    t0 = time.monotonic()
    s = h.connect(info2["entries"]["t1/who"])
    s.settimeout(5)
    h.check(s.recv(10) == b"", "visitor without agent got data")
    h.check(time.monotonic() - t0 < 2, "visitor without agent was not closed promptly")
    s.close()
    h.wait_for(lambda: re.search(r'ev=visitor_refused .*reason="no live agent', node2.text()),
               5, "refusal logged with a reason")


h.run(scenario, "node_restart")
