"""The pool behind warren-lb instead of HAProxy (issue 5): three nodes, each
on a loopback address of its own (127.0.0.21-23) with its entry point on the
same port, so that one gossip-learned set ("web:PORT") reaches every node's
entry. warren-lb learns both sets from gossip: "fleet" for the agents'
tunnels (sni listener, SNI <node-id>.c1 picks the node) and "web" for
visitors (tcp listener). One agent, given only warren-lb's sni listener,
holds every node; a steady visitor load runs through the tcp listener while
every node is restarted in turn with SIGTERM: no visitor request may fail,
and the agent follows without a restart. Then one node is killed with -9
under load: warren-lb takes it out of both sets, the agent drops it, and
only requests in flight on it may fail.
"""
import socket
import time

import harness as h
import lbutil as u

IPS = {"n1": "127.0.0.21", "n2": "127.0.0.22", "n3": "127.0.0.23"}
PING = ["--ping-interval", "1s", "--ping-timeout", "3s"]


def common_port():
    """A TCP port free on all three addresses."""
    for _ in range(50):
        port = h.free_port(IPS["n1"])
        ok = True
        for ip in IPS.values():
            with socket.socket() as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise h.TestFailure("no common free port")


def distinct_ports(ip, avoid):
    """listen, gossip (TCP and UDP), admin and peer ports on <ip>, all
    different from each other and from <avoid>: the sockets stay bound until
    all are chosen, so the kernel cannot hand out one twice."""
    for _ in range(50):
        socks = []
        try:
            for _k in range(4):
                s = socket.socket()
                s.bind((ip, 0))
                socks.append(s)
            got = [s.getsockname()[1] for s in socks]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u_:
                try:
                    u_.bind((ip, got[1]))
                except OSError:
                    continue
            if avoid in got:
                continue
            return {"listen": got[0], "gossip": got[1], "admin": got[2], "peer": got[3]}
        finally:
            for s in socks:
                s.close()
    raise h.TestFailure("no free ports on %s" % ip)


def scenario(c):
    key = c.cluster_key()
    entry = common_port()
    ports = {n: distinct_ports(ip, entry) for n, ip in IPS.items()}
    procs, infos = {}, {}

    def start(nid, join):
        ip, pt = IPS[nid], ports[nid]
        procs[nid], infos[nid] = c.node(
            entries=["%s:%d=t1/echo" % (ip, entry)], node_id=nid,
            listen="%s:%d" % (ip, pt["listen"]), cluster_key=key,
            gossip_addr="%s:%d" % (ip, pt["gossip"]), join=join,
            extra=PING + ["--drain-timeout", "5s", "--admin-addr", "%s:%d" % (ip, pt["admin"]),
                          "--peer-addr", "%s:%d" % (ip, pt["peer"])])

    def gossip(nid):
        return "%s:%d" % (IPS[nid], ports[nid]["gossip"])

    start("n1", [])
    start("n2", [gossip("n1")])
    start("n3", [gossip("n1")])
    ids = sorted(IPS)
    h.wait_for(lambda: all(h.alive_members(infos[x]["admin"]) == ids for x in ids), 15,
               "3 nodes ALIVE everywhere", interval=0.1)

    lb, linfo = u.start_lb(c, "lb", [
        "--cluster-key", key, "--join", gossip("n1"), "--cluster", c.cluster,
        "--mesh-set", "fleet", "--mesh-set", "web:%d" % entry,
        "--listen", "sni:127.0.0.1:0", "--route", "%s=fleet" % c.cluster,
        "--listen", "tcp:127.0.0.1:0,set=web",
        "--check-interval", "100ms", "--rise", "1", "--fall", "1"])
    sni, web = linfo["listen"][0][1], linfo["listen"][1][1]
    admin = linfo["admin"]

    def up(set_name):
        return sorted(b["node_id"] for b in u.backends(admin)[set_name].values()
                      if b["state"] == "UP")

    h.wait_for(lambda: up("fleet") == ids and up("web") == ids, 15, "both sets UP on 3 nodes")
    svc = h.Service(h.echo_handler)
    agent = c.agent(sni, "t1", {"echo": svc.addr}, name="a1", extra=PING)

    def agent_holds_all():
        return all(h.holds_agent(infos[x]["admin"], "t1", "a1") for x in ids)

    h.wait_for(agent_holds_all, 15, "the agent holds all 3 nodes through warren-lb")
    load = h.VisitorLoad(web, threads=4, tag="lbroll").start()
    try:
        load.flowing(50, 10, "before the rolling restart")
        for nid in ids:
            load.mark("SIGTERM %s" % nid)
            procs[nid].signal(15)
            h.check(procs[nid].wait(15) == 0, "%s drained and exited" % nid)
            load.mark("%s exited" % nid)
            load.flowing(20, 10, "while %s is down" % nid)
            others = [x for x in ids if x != nid]
            start(nid, [gossip(others[0])])
            load.mark("%s restarted" % nid)
            h.wait_for(lambda: up("fleet") == ids and up("web") == ids, 15,
                       "%s UP again in warren-lb" % nid)
            h.wait_for(agent_holds_all, 15, "the agent holds %s again" % nid)
            load.flowing(30, 10, "after %s restarted" % nid)
    finally:
        load.stop()
    h.check(not load.failures(), "rolling restart behind warren-lb: no visitor request may "
            "fail; %s" % load.summary())
    h.check(agent.count("ev=starting") == 1, "the agent was never restarted")
    for nid in ids:
        opened = h.node_metric(infos[nid]["admin"], "warren_node_streams_opened_total")
        h.check(opened and opened > 0, "visitors reached restarted %s: %r" % (nid, opened))
    print("rolling restart behind warren-lb: %s" % load.summary())

    # kill -9 of one node under load: warren-lb marks it DOWN within its check
    # interval, the agent drops it within its keepalive timeout, and requests
    # keep succeeding through the other two; only those in flight on the
    # dead node may fail (at most one per load thread).
    load = h.VisitorLoad(web, threads=4, tag="lbkill").start()
    try:
        load.flowing(50, 10, "before the kill")
        t_kill = load.mark("kill -9 n2")
        procs["n2"].kill9()
        h.wait_for(lambda: "n2" not in up("web") and "n2" not in up("fleet"), 5,
                   "warren-lb marks n2 DOWN")
        h.wait_for(lambda: agent.count("ev=link_closed node=n2") >= 1, 8,
                   "the agent drops n2 (its keepalive timeout is 3 s)")
        t_after = load.mark("n2 out of the sets")
        load.flowing(100, 10, "after the kill")
    finally:
        load.stop()
    late = [f for f in load.failures() if f[0] > t_after]
    h.check(not late, "no request fails once n2 is out: %s" % load.summary())
    h.check(len(load.failures()) <= 4, "at most the in-flight requests failed: %s"
            % load.summary())
    h.check(t_kill > 0, "kill marked")
    svc.close()


if __name__ == "__main__":
    h.run(scenario, "lb_pool")
