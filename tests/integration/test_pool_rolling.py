"""The fleet changes under visitor load (issue 4): nodes behind a real HAProxy
(mode tcp, roundrobin, retries 3 + option redispatch, no health checks), one
agent given only HAProxy's address, and visitors in a few threads doing short
echo request/responses through HAProxy, a new TCP connection each, counted.

(a) Scale up from 3 to 5 nodes and down to 2 while the load runs: the agent
    follows without a restart (every remaining node lists it READY, its
    metrics say wanted == held == N), and no visitor request fails: every
    change is graceful (new nodes added to HAProxy; SIGTERM, then HAProxy
    reloaded without the node).
(b) kill -9 a node mid-traffic: the agent drops it within the keepalive
    timeout (held N-1 within --ping-timeout + slack), and wants it no more
    once gossip declares it dead. Only requests in flight at the kill may
    fail (at most one per visitor thread); every request started after it
    succeeds, while HAProxy still lists the dead node (retries, redispatch).
(c) Rolling restart of every node, one by one, with SIGTERM (drain) and a
    start on the same ports: zero failed visitor requests; after each restart
    the agent holds the node again before the next one goes.

HAProxy's web listener lists a node as soon as it runs (a new node once it
has joined; a restarted one all along): a visitor that lands on a node the
agent has not reached yet must be forwarded over a peer link (--peer-addr)
to one it has. HAProxy reloads hand their listening sockets over (-x), so
that a reload itself resets no queued connection. Every failure is printed
with its start and end next to the test's events (kills, reloads, starts).
Runtime about 10 s.
"""
import signal
import time

import harness as h

TUNNEL, SERVICE, AGENT = "t1", "echo", "a1"
PING = ["--ping-interval", "1s", "--ping-timeout", "3s"]
PING_TIMEOUT_S = 3.0


class Fleet:
    """Nodes on fixed ports (so that a restarted node is where HAProxy looks),
    HAProxy in front (checking each node's /readyz), one agent, one echo
    service."""

    def __init__(self, c, n):
        self.c = c
        self.key = c.cluster_key()
        self.ports = {}
        self.procs, self.infos = {}, {}
        self.lb = h.HAProxy(c, "haproxy", balance="roundrobin", seamless=True)
        self.svc = h.Service(h.echo_handler)
        self.mfile = c.path("agent.prom")
        self.agent = None
        self.load = None
        for i in range(1, n + 1):
            self.start_node("n%d" % i)

    def mark(self, what):
        if self.load is not None:
            self.load.mark(what)

    def reload(self, tunnel_nodes, web_nodes=None):
        self.mark("reload haproxy: tunnel %s web %s" % (sorted(tunnel_nodes), sorted(
            tunnel_nodes if web_nodes is None else web_nodes)))
        self.lb.reload(self.backends(tunnel_nodes, web_nodes))
        self.mark("reload done")

    def start_node(self, nid):
        self.mark("start %s" % nid)
        if nid not in self.ports:
            self.ports[nid] = {"listen": h.free_port(), "entry": h.free_port(),
                               "gossip": h.free_port(udp_too=True), "peer": h.free_port(),
                               "admin": h.free_port()}
        pt = self.ports[nid]
        # Join through every other node the test knows: the first node of the
        # cluster joins none, a restarted first node must join the rest.
        join = ["127.0.0.1:%d" % self.ports[x]["gossip"] for x in sorted(self.ports)
                if x != nid and (x in self.procs and self.procs[x].alive())]
        extra = PING + ["--drain-timeout", "5s", "--peer-addr", "127.0.0.1:%d" % pt["peer"],
                        "--admin-addr", "127.0.0.1:%d" % pt["admin"]]
        self.procs[nid], self.infos[nid] = self.c.node(
            entries=["127.0.0.1:%d=%s/%s" % (pt["entry"], TUNNEL, SERVICE)], node_id=nid,
            listen="127.0.0.1:%d" % pt["listen"], cluster_key=self.key,
            gossip_addr="127.0.0.1:%d" % pt["gossip"], join=join, extra=extra)
        self.mark("%s ready" % nid)
        return self.procs[nid]

    def live(self):
        return sorted(x for x in self.procs if self.procs[x].alive())

    def backends(self, tunnel_nodes, web_nodes=None):
        # HAProxy checks each node's /readyz (503 from SIGTERM on), as a
        # production config would, so it stops choosing a draining node
        # within a check interval; connections refused meanwhile are retried.
        web_nodes = tunnel_nodes if web_nodes is None else web_nodes
        return {"tunnel": [(self.infos[x]["listen"], self.infos[x]["admin"])
                           for x in sorted(tunnel_nodes)],
                "web": [(self.infos[x]["entries"]["%s/%s" % (TUNNEL, SERVICE)],
                         self.infos[x]["admin"]) for x in sorted(web_nodes)]}

    def wait_converged(self, timeout=15):
        ids = self.live()
        h.wait_for(lambda: all(h.alive_members(self.infos[x]["admin"]) == ids for x in ids),
                   timeout, "nodes %s all see each other ALIVE" % ids, interval=0.1)

    def start_agent(self):
        self.agent = self.c.agent(self.lb.listener("tunnel"), TUNNEL, {SERVICE: self.svc.addr},
                                  name=AGENT, extra=["--metrics-file", self.mfile] + PING)

    def pool(self):
        m = h.read_prom(self.mfile)
        return m.get("warren_agent_nodes_wanted"), m.get("warren_agent_nodes_held")

    def wait_agent_follows(self, timeout=15):
        """The agent wants and holds exactly the live nodes, and each lists it READY."""
        ids = self.live()
        n = float(len(ids))
        try:
            h.wait_for(lambda: self.pool() == (n, n) and all(
                h.holds_agent(self.infos[x]["admin"], TUNNEL, AGENT) for x in ids), timeout,
                "agent wanted == held == %d and held by each of %s" % (n, ids), interval=0.05)
        except h.TestFailure as e:
            held = {x: h.holds_agent(self.infos[x]["admin"], TUNNEL, AGENT) for x in ids}
            raise h.TestFailure("%s; at the deadline (wanted, held) = %r, held by: %r"
                                % (e, self.pool(), held))
        h.check(self.agent.alive(), "the agent kept running")

    def sigterm(self, nids):
        self.mark("SIGTERM %s" % nids)
        for x in nids:
            self.procs[x].signal(signal.SIGTERM)
        for x in nids:
            rc = self.procs[x].wait(15)
            self.mark("%s exited" % x)
            h.check(rc == 0, "%s drained and exited 0 (got %r)" % (x, rc))
            h.check("ev=stopped" in self.procs[x].text(), "%s logged its stop" % x)


def check_no_failures(load, what):
    f = load.failures()
    h.check(not f, "%s: no visitor request may fail; %s" % (what, load.summary()))


def scenario_scale(c):
    t0 = time.monotonic()
    fl = Fleet(c, 3)
    fl.wait_converged()
    fl.lb.start(fl.backends(fl.live()))
    fl.start_agent()
    fl.wait_agent_follows()
    load = h.VisitorLoad(fl.lb.listener("web"), threads=4, tag="scale")
    fl.load = load.start()
    try:
        load.flowing(50, 10, "with 3 nodes")

        # Up to 5: start them, then list them in HAProxy.
        for nid in ("n4", "n5"):
            fl.start_node(nid)
        fl.wait_converged()
        fl.reload(fl.live())
        fl.wait_agent_follows()
        load.flowing(50, 10, "with 5 nodes")
        for nid in ("n4", "n5"):
            opened = h.node_metric(fl.infos[nid]["admin"], "warren_node_streams_opened_total")
            h.check(opened and opened > 0, "visitors reached the new node %s: streams opened %r"
                    % (nid, opened))
        print("(a) up to 5 nodes at %.1fs: %s" % (time.monotonic() - t0, load.summary()))

        # Down to 4, then to 2 (two at once): SIGTERM first, so HAProxy still
        # sends visitors to the draining nodes for a while.
        for gone in (["n1"], ["n3", "n5"]):
            fl.sigterm(gone)
            load.flowing(20, 10, "after %s drained" % gone)
            fl.reload(fl.live())
            fl.wait_agent_follows()
            load.flowing(20, 10, "with nodes %s" % fl.live())
        h.check(fl.live() == ["n2", "n4"], "2 nodes left: %s" % fl.live())
        h.check("ev=pool wants=2 holds=2" in fl.agent.text(), "agent logged its pool of 2")
        h.check(fl.agent.count("ev=starting") == 1, "the agent was never restarted")
    finally:
        load.stop()
    check_no_failures(load, "scale 3 -> 5 -> 2")
    print("(a) scale 3 -> 5 -> 2 in %.1fs: %s" % (time.monotonic() - t0, load.summary()))


def scenario_kill9(c):
    t0 = time.monotonic()
    fl = Fleet(c, 4)
    fl.wait_converged()
    fl.lb.start(fl.backends(fl.live()))
    fl.start_agent()
    fl.wait_agent_follows()
    threads = 4
    load = h.VisitorLoad(fl.lb.listener("web"), threads=threads, tag="kill9")
    fl.load = load.start()
    try:
        load.flowing(50, 10, "with 4 nodes")
        victim = "n3"
        load.mark("kill -9 %s" % victim)
        fl.procs[victim].kill9()
        # Requests started before the node was reaped may have been on it.
        t_kill = load.mark("%s reaped" % victim)
        try:
            h.wait_for(lambda: fl.pool()[1] == 3, PING_TIMEOUT_S + 2,
                       "the agent drops the killed node within the keepalive timeout",
                       interval=0.02)
        except h.TestFailure as e:
            raise h.TestFailure("%s; (wanted, held) = %r" % (e, fl.pool()))
        dropped_s = time.monotonic() - t_kill
        # HAProxy still lists the dead node: visitors go on succeeding.
        load.flowing(50, 15, "with %s dead but still listed in HAProxy" % victim)
        fl.wait_agent_follows(timeout=20)  # gossip holds it DEAD: the lists drop it
        wanted_s = time.monotonic() - t_kill
        fl.reload(fl.live())
        load.flowing(50, 10, "after HAProxy dropped %s" % victim)
        h.check(fl.agent.count("ev=starting") == 1, "the agent was never restarted")
    finally:
        load.stop()
    f = load.failures()
    late = [x for x in f if x[0] >= t_kill]
    h.check(not late, "requests started after %s died must succeed: %d did not; %s"
            % (victim, len(late), load.summary()))
    h.check(len(f) <= threads, "at most one in-flight request per thread may fail at the "
            "kill (%d threads): %s" % (threads, load.summary()))
    print("(b) kill -9 %s: held 3 after %.2fs, wanted 3 after %.1fs; %s (%.1fs)"
          % (victim, dropped_s, wanted_s, load.summary(), time.monotonic() - t0))


def scenario_rolling(c):
    t0 = time.monotonic()
    fl = Fleet(c, 3)
    fl.wait_converged()
    ids = fl.live()
    fl.lb.start(fl.backends(ids))
    fl.start_agent()
    fl.wait_agent_follows()
    load = h.VisitorLoad(fl.lb.listener("web"), threads=4, tag="roll")
    fl.load = load.start()
    try:
        load.flowing(50, 10, "before the rolling restart")
        for nid in ids:
            t1 = time.monotonic()
            fl.sigterm([nid])
            load.flowing(20, 10, "while %s is down" % nid)
            fl.start_node(nid)
            fl.wait_converged()
            fl.wait_agent_follows()
            load.flowing(30, 10, "after %s restarted" % nid)
            print("(c) %s restarted and held again in %.1fs: %d ok, %d failed so far"
                  % (nid, time.monotonic() - t1, load.ok(), len(load.failures())))
        h.check(fl.agent.count("ev=starting") == 1, "the agent was never restarted")
        for nid in ids:
            opened = h.node_metric(fl.infos[nid]["admin"], "warren_node_streams_opened_total")
            h.check(opened and opened > 0, "visitors reached restarted %s: %r" % (nid, opened))
    finally:
        load.stop()
    check_no_failures(load, "rolling restart")
    print("(c) rolling restart of %s in %.1fs: %s"
          % (ids, time.monotonic() - t0, load.summary()))


def scenario(c):
    """Runs the three, each in a cluster of its own, all of them even when one
    fails (their logs are printed then); fails if any failed."""
    import traceback
    h.check(h.node_has_flag("--peer-addr"), "warren-node has no --peer-addr: these tests "
            "need forwarding between nodes")
    failed = []
    for name, fn in (("scale", scenario_scale), ("kill9", scenario_kill9),
                     ("rolling_restart", scenario_rolling)):
        c2 = h.Cluster("pool_rolling_" + name)
        ok = False
        try:
            fn(c2)
            ok = True
        except Exception:
            traceback.print_exc()
            failed.append(name)
        finally:
            c2.stop_all()
            if not ok:
                c2.dump_logs()
            c2.cleanup()
    h.check(not failed, "failed: %s" % ", ".join(failed))


if __name__ == "__main__":
    h.run(scenario, "pool_rolling")
