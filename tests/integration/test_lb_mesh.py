"""warren-lb learns the fleet from gossip (issue 5, priority 3): guards the
observer join, mesh sets that follow the fleet, and "<node-id>.<cluster>"
SNI routing to one node.

warren-lb joins a 3-node fleet's gossip as an observer with --mesh-set
fleet: the set holds the 3 nodes (at their advertised listen addresses,
checked with GET /readyz on their admin addresses), then 5 when two more
join, then 2 when three leave (SIGTERM: LEFT, so DRAINING in warren-lb, and
no new connection reaches them). An agent given only warren-lb's sni
listener holds a tunnel to every node with exactly one dial per node: one
blind dial (SNI = the cluster name, routed to the set) and one dial aimed at
each other node by SNI "<node-id>.c1", which warren-lb sends to that node.
The nodes require a PROXY protocol header from loopback
(--proxy-protocol-from) and warren-lb sends PROXY v2 on both listeners: the
tunnels coming up at all shows the header is there and well-formed.
"""
import os

import harness as h
import lbutil as u


def fleet(admin):
    """{node id: state} of the mesh set, gone members left out."""
    return {b["node_id"]: b["state"] for b in u.backends(admin)["fleet"].values()}


def up(admin):
    return sorted(k for k, v in fleet(admin).items() if v == "UP")


PROXY_FROM = ["--proxy-protocol-from", "127.0.0.1/32"]


def scenario(c):
    key = c.cluster_key()
    nodes = {}
    p, info = c.node(node_id="n1", cluster_key=key, extra=PROXY_FROM)
    nodes["n1"] = (p, info)
    seed = info["gossip"]
    for nid in ("n2", "n3"):
        nodes[nid] = c.node(node_id=nid, cluster_key=key, join=[seed], extra=PROXY_FROM)

    lb, linfo = u.start_lb(c, "lb", [
        "--cluster-key", key, "--join", seed, "--cluster", c.cluster, "--gossip-id", "lb1",
        "--mesh-set", "fleet", "--listen", "tcp:127.0.0.1:0,set=fleet,balance=p2c,proxy-v2",
        "--listen", "sni:127.0.0.1:0,proxy-v2", "--route", "%s=fleet" % c.cluster,
        "--check-interval", "200ms"])
    tcp, sni = linfo["listen"][0][1], linfo["listen"][1][1]
    admin = linfo["admin"]
    h.check(linfo["gossip"] is not None, "ready file has the gossip address")
    h.wait_for(lambda: up(admin) == ["n1", "n2", "n3"], 15, "3 nodes UP in the mesh set")
    bs = u.backends(admin)["fleet"]
    for nid, (_, info) in nodes.items():
        h.check(info["listen"] in bs, "%s at its listen address %s" % (nid, info["listen"]))
        h.check(bs[info["listen"]]["check"] == "http" and
                bs[info["listen"]]["check_addr"] == info["admin"],
                "%s checked on its admin address" % nid)
    h.wait_for(lambda: all(b["checks_ok"] >= 2 and b["checks_failed"] == 0
                           for b in u.backends(admin)["fleet"].values()), 10,
               "GET /readyz checks pass on every node")
    st, _, body = h.http_get(admin, "/readyz")
    h.check(st == 200, "ready once joined: %d %r" % (st, body))
    # The observer is a member the nodes see, and holds no tunnels.
    members = h.admin_json(nodes["n1"][1]["admin"], "/v1/members")
    me = [m for m in members if m["id"] == "lb1"]
    h.check(me and me[0]["role"] == "observer", "nodes list lb1 as an observer: %r" % me)

    # An agent through the sni listener: one dial per node.
    echo = h.Service(h.echo_handler)
    metrics = c.path("agent.prom")
    # The agent aims one dial at each node until a dial lands elsewhere (a
    # plain L4 balancer); behind an SNI-routing one, each lands where aimed.
    c.agent(sni, "t1", {"echo": echo.addr}, name="ag1", extra=["--metrics-file", metrics])

    def held_by_all(ids):
        return all(h.holds_agent(nodes[n][1]["admin"], "t1", "ag1") for n in ids)
    h.wait_for(lambda: held_by_all(["n1", "n2", "n3"]), 20, "ag1 held by n1, n2, n3")
    m = h.read_prom(metrics)
    blind = m.get('warren_agent_dials_total{kind="blind"}', 0)
    fleet_dials = m.get('warren_agent_dials_total{kind="fleet"}', 0)
    h.check(blind == 1 and fleet_dials == 2 and
            m.get("warren_agent_dial_duplicates_total", 0) == 0,
            "3 nodes in 3 dials: blind=%d fleet=%d dup=%d" % (
                blind, fleet_dials, m.get("warren_agent_dial_duplicates_total", 0)))
    h.check(u.metric(admin, 'warren_lb_connections_total{listener="%s",mode="sni",'
                     'outcome="no_route"}' % sni) == 0, "every SNI routed")

    # 3 -> 5.
    for nid in ("n4", "n5"):
        nodes[nid] = c.node(node_id=nid, cluster_key=key, join=[seed], extra=PROXY_FROM)
    h.wait_for(lambda: up(admin) == ["n1", "n2", "n3", "n4", "n5"], 15, "5 nodes UP")
    h.wait_for(lambda: held_by_all(["n1", "n2", "n3", "n4", "n5"]), 20, "ag1 held by all 5")
    m = h.read_prom(metrics)
    h.check(m.get('warren_agent_dials_total{kind="blind"}', 0) +
            m.get('warren_agent_dials_total{kind="fleet"}', 0) == 5 and
            m.get("warren_agent_dial_duplicates_total", 0) == 0, "5 nodes in 5 dials: %r" % m)

    # 5 -> 2: three leave; they drain in warren-lb and get no new connection.
    for nid in ("n1", "n2", "n3"):
        nodes[nid][0].stop()
    h.wait_for(lambda: up(admin) == ["n4", "n5"], 15, "2 nodes UP")
    h.wait_for(lambda: all(fleet(admin).get(n) in ("DRAINING", None) for n in ("n1", "n2", "n3")),
               15, "left nodes DRAINING")
    before = {a: b["connections"] for a, b in u.backends(admin)["fleet"].items()}
    for _ in range(6):
        s = h.connect(tcp)
        s.close()
    left = {nodes[n][1]["listen"] for n in ("n1", "n2", "n3")}

    def counted():
        after = {a: b["connections"] for a, b in u.backends(admin)["fleet"].items()}
        return sum(after.values()) - sum(before.values()) >= 6 and after
    after = h.wait_for(counted, 5, "6 connections counted")
    h.check(all(after.get(a, 0) == before.get(a, 0) for a in left),
            "no connection reached a node that left: %r -> %r" % (before, after))
    h.check("ev=member_event member=n1" in lb.text(), "member events logged")
    echo.close()
    h.check(lb.stop() == 0, "clean exit")


if __name__ == "__main__":
    h.run(scenario, "lb_mesh")
