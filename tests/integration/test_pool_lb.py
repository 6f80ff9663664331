"""Agents behind a load balancer hold a tunnel to every node (issue 4): 3
nodes behind a real HAProxy (mode tcp, balance roundrobin), then 5 behind
balance random. One agent is given only HAProxy's address. First HAProxy
sends agents to n1 alone: visitors landing on the other nodes are forwarded
to n1 and all succeed. Then HAProxy lists every node: the agent, which
learnt the nodes from the first WELCOME, keeps dialing through HAProxy until
every node lists it in /v1/tunnels (dials that land on a node it holds are
closed early and counted). Visitors through HAProxy reach the service whichever
node they land on. A node added later is reached without restarting the
agent; a node that leaves (SIGTERM) is dropped by it.
"""
import json
import signal
import socket

import harness as h


def tunnels(admin):
    st, _, body = h.http_get(admin, "/v1/tunnels", timeout=5)
    h.check(st == 200, "/v1/tunnels answered %d" % st)
    return json.loads(body)["tunnels"]


def holds(admin, tunnel, agent):
    t = tunnels(admin).get(tunnel)
    return t is not None and any(a["agent_id"] == agent and a["state"] == "READY"
                                 for a in t["agents"])


def n1_holds_t1(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    return any(m["id"] == "n1" and "t1" in m["tunnels"] for m in json.loads(body))


def members_alive(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    return sorted(m["id"] for m in json.loads(body) if m["state"] == "ALIVE")


def metrics_file(path):
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                k, v = line.rsplit(" ", 1)
                vals[k] = float(v)
    except FileNotFoundError:
        pass
    return vals


def node_metric(admin, series):
    st, _, body = h.http_get(admin, "/metrics", timeout=5)
    for line in body.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def visit(addr, payload):
    s = h.connect(addr, timeout=5)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return h.recv_all(s)
    finally:
        s.close()


def start_node(c, nid, key, seed):
    join = [seed] if seed else []
    return c.node(entries=["t1/echo"], node_id=nid, cluster_key=key, join=join,
                  extra=["--ping-interval", "1s", "--ping-timeout", "3s",
                         "--drain-timeout", "5s"])


def fleet(c, n, balance):
    key = c.cluster_key()
    procs, infos = {}, {}
    for i in range(1, n + 1):
        nid = "n%d" % i
        procs[nid], infos[nid] = start_node(c, nid, key, infos["n1"]["gossip"] if i > 1 else None)
    ids = sorted(infos)
    h.wait_for(lambda: all(members_alive(infos[x]["admin"]) == ids for x in ids), 15,
               "%d nodes see each other ALIVE" % n, interval=0.1)
    lb = h.HAProxy(c, "haproxy-%s" % balance, balance=balance)
    lb.start({"tunnel": [infos["n1"]["listen"]],
              "web": [infos[x]["entries"]["t1/echo"] for x in ids]})
    return key, procs, infos, lb


def scenario_for(c, n, balance):
    key, procs, infos, lb = fleet(c, n, balance)
    svc = h.Service(h.echo_handler)
    mfile = c.path("agent-%s.prom" % balance)
    agent = c.agent(lb.listener("tunnel"), "t1", {"echo": svc.addr}, name="a1",
                    extra=["--metrics-file", mfile, "--ping-interval", "1s",
                           "--ping-timeout", "3s"])
    ids = sorted(infos)
    # Before the pool converges, visitors landing on any node already reach
    # the service: forwarding covers the gap. HAProxy's tunnel listener starts
    # with n1 alone, so the agent can hold nothing else yet.
    h.wait_for(lambda: holds(infos["n1"]["admin"], "t1", "a1"), 10, "the agent holds n1",
               interval=0.01)
    # Forwarding needs gossip to say who holds t1: wait until every node knows.
    h.wait_for(lambda: all(n1_holds_t1(infos[x]["admin"]) for x in ids), 10,
               "every node learns from gossip that n1 holds t1", interval=0.01)
    for i in range(3 * n):
        msg = b"early %d\n" % i
        got = visit(lb.listener("web"), msg)
        h.check(got == msg, "early visitor %d echoed: %r" % (i, got))
    fwd = sum(node_metric(infos[x]["admin"],
                          'warren_node_streams_forwarded_total{direction="out"}')
              for x in ids if x != "n1")
    h.check(fwd > 0, "visitors on n2..n%d were forwarded to n1: %r" % (n, fwd))
    h.check(not any(holds(infos[x]["admin"], "t1", "a1") for x in ids if x != "n1"),
            "the agent was on n1 only during the early visits")
    lb.reload({"tunnel": [infos[x]["listen"] for x in ids],
               "web": [infos[x]["entries"]["t1/echo"] for x in ids]})
    h.wait_for(lambda: all(holds(infos[x]["admin"], "t1", "a1") for x in ids), 15,
               "the agent holds a tunnel to each of the %d nodes" % n, interval=0.05)
    # The nodes list the agent READY as they send WELCOME; the agent counts
    # a node once WELCOME arrives: its metrics follow a moment later.
    h.wait_for(lambda: metrics_file(mfile).get("warren_agent_nodes_wanted") == n
               and metrics_file(mfile).get("warren_agent_nodes_held") == n, 5,
               "agent metrics wanted == held == %d" % n, interval=0.01)
    m = metrics_file(mfile)
    dials = sum(v for k, v in m.items() if k.startswith("warren_agent_dials_total"))
    h.check(dials >= n, "at least one dial per node: %r" % dials)
    h.check(m.get("warren_agent_dial_duplicates_total", 0) >= 1,
            "dials through n1 alone were closed early as duplicates: %r" % m)
    h.check("ev=pool wants=%d holds=%d" % (n, n) in agent.text(), "agent logged its full pool")
    # Duplicates were closed before HELLO: each node registered the agent once.
    for x in ids:
        h.check(procs[x].count("ev=agent_ready") == 1,
                "%s registered the agent %d times" % (x, procs[x].count("ev=agent_ready")))

    # Visitors through HAProxy reach the service on whichever node they land.
    for i in range(3 * n):
        msg = b"visit %d via %s\n" % (i, balance.encode())
        got = visit(lb.listener("web"), msg)
        h.check(got == msg, "visitor %d echoed: %r" % (i, got))

    # A node joins, and the operator adds it to HAProxy: the agent reaches it
    # without a restart (its dials through the fleet land there in turn).
    nid = "n%d" % (n + 1)
    procs[nid], infos[nid] = start_node(c, nid, key, infos["n1"]["gossip"])
    ids = sorted(infos)
    lb.reload({"tunnel": [infos[x]["listen"] for x in ids],
               "web": [infos[x]["entries"]["t1/echo"] for x in ids]})
    h.wait_for(lambda: holds(infos[nid]["admin"], "t1", "a1"), 10,
               "the agent reaches the new node %s" % nid, interval=0.05)

    # A node leaves: the agent drops it (its metrics say so) and keeps the rest.
    gone = "n2"
    procs[gone].signal(signal.SIGTERM)
    h.check(procs[gone].wait(15) == 0, "%s drained and exited" % gone)
    h.wait_for(lambda: metrics_file(mfile).get("warren_agent_nodes_held") == n, 10,
               "agent holds %d nodes after %s left" % (n, gone), interval=0.05)
    h.check(metrics_file(mfile).get("warren_agent_nodes_wanted") == n, "and wants %d" % n)
    for x in infos:
        if x != gone:
            h.check(holds(infos[x]["admin"], "t1", "a1"), "still held: %s" % x)
    h.check(agent.alive(), "the agent kept running")
    agent.stop()
    svc.close()


def scenario(c):
    scenario_for(c, 3, "roundrobin")
    c.stop_all()
    c.procs = []
    c2 = h.Cluster("pool_lb_random")
    try:
        scenario_for(c2, 5, "random")
    finally:
        c2.stop_all()
        c2.cleanup()


if __name__ == "__main__":
    h.run(scenario, "pool_lb")
