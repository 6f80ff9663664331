"""PROXY v2 end to end (issue 5): a visitor reaches a node's entry point
through warren-lb (tcp listener with proxy-v2), and warren-node, trusting
the balancer's address (--proxy-protocol-from), reports the visitor's own
address, not the balancer's: in its log, in the OPEN header the agent
receives (its stream log), and in the proxy-header counter. The visitor
connects from 127.0.0.9, the balancer from 127.0.0.1, so the two cannot be
mistaken for each other; the agent's tunnel comes through the balancer too. A connection straight to the entry point from the
trusted address without a header is refused and counted.
"""
import socket

import harness as h
import lbutil as u


def scenario(c):
    svc = h.Service(h.echo_handler)
    node, info = c.node(entries=["t1/echo"], node_id="n1",
                        extra=["--proxy-protocol-from", "127.0.0.1/32", "--log-level", "debug"])
    entry = info["entries"]["t1/echo"]
    # The agent comes through warren-lb as well: the node trusts 127.0.0.1
    # on both its listeners, so every connection from there needs a header.
    lb, linfo = u.start_lb(c, "lb", ["--listen", "tcp:127.0.0.1:0,set=entry,proxy-v2",
                                     "--backend", "entry=%s" % entry,
                                     "--listen", "tcp:127.0.0.1:0,set=tunnel,proxy-v2",
                                     "--backend", "tunnel=%s" % info["listen"]])
    front, tunnel = linfo["listen"][0][1], linfo["listen"][1][1]
    agent = c.agent(tunnel, "t1", {"echo": svc.addr}, name="a1", extra=["--log-level", "debug"])
    h.wait_for(lambda: "ev=agent_ready" in node.text(), 10, "agent registered through the lb")

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind(("127.0.0.9", 0))
    vport = s.getsockname()[1]
    s.connect(h.split_addr(front))
    s.sendall(b"hello through warren-lb\n")
    s.shutdown(socket.SHUT_WR)
    got = h.recv_all(s)
    s.close()
    h.check(got == b"hello through warren-lb\n", "echoed through lb and node: %r" % got)

    client = "client=127.0.0.9:%d" % vport
    h.wait_for(lambda: client in node.text(), 5, "the node logs the visitor's own address")
    h.wait_for(lambda: client in agent.text(), 5, "the agent's OPEN carried the visitor's address")
    h.check(u.metric(info["admin"], 'warren_node_proxy_headers_total{result="ok"}') >= 1,
            "the node counted the header")

    # Straight to the entry point from the trusted address, with no header.
    s = h.connect(entry, timeout=10)
    s.sendall(b"no header here\n")
    s.shutdown(socket.SHUT_WR)
    got = h.recv_all(s)
    s.close()
    h.check(got == b"", "a trusted peer without a header is closed: %r" % got)
    h.wait_for(lambda: u.metric(info["admin"], 'warren_node_proxy_headers_total{result="bad"}')
               >= 1, 5, "the bad header is counted")
    h.check("ev=proxy_header_bad" in node.text(), "and logged")
    svc.close()


if __name__ == "__main__":
    h.run(scenario, "lb_proxy_visitor")
