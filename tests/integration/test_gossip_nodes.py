"""Gossip between real warren-node processes (issue 3, node wiring): three
nodes on loopback join through the first and all see three ALIVE members; an
agent registering on node 2 shows up in node 1's view of node 2's tunnels;
kill -9 of node 3 is seen as DEAD by the others; SIGTERM of node 2 is seen as
LEFT (a graceful leave, not a failure); a node started with --advertise-addr
127.0.0.2 behind wildcard binds is reached there. Also checks /readyz, /metrics and
warrenctl members against a gossiping node.
"""
import json
import signal

import harness as h


def members(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    h.check(st == 200, "/v1/members answered %d" % st)
    return {m["id"]: m for m in json.loads(body)}


def probes_sent(admin):
    text = h.http_get(admin, "/metrics")[2].decode()
    return int([l for l in text.splitlines() if l.startswith("warren_gossip_probes_total ")][0]
               .split()[1])


def state_of(admin, nid):
    m = members(admin).get(nid)
    return m["state"] if m is not None else None


def scenario(c):
    key = c.cluster_key()
    n1, i1 = c.node(node_id="n1", cluster_key=key)
    h.check(i1["gossip"] is not None and i1["gossip"].startswith("127.0.0.1:"),
            "gossip address in the ready file: %r" % i1["gossip"])
    n2, i2 = c.node(node_id="n2", cluster_key=key, join=[i1["gossip"]])
    n3, i3 = c.node(node_id="n3", cluster_key=key, join=[i1["gossip"]])
    admins = {"n1": i1["admin"], "n2": i2["admin"], "n3": i3["admin"]}

    def all_alive():
        for a in admins.values():
            ms = members(a)
            if sorted(ms) != ["n1", "n2", "n3"]:
                return False
            if any(m["state"] != "ALIVE" for m in ms.values()):
                return False
        return True

    h.wait_for(all_alive, 10, "every node sees 3 ALIVE members", interval=0.1)
    m2 = members(i1["admin"])["n2"]
    h.check(m2["role"] == "node", "role of n2: %r" % m2["role"])
    h.check(not m2["addresses"].get("tunnel"),
            "no direct tunnel address unless advertised: %r" % m2)
    h.check(m2["addresses"].get("admin") == i2["admin"], "n2's admin address: %r" % m2)
    h.check(m2["addresses"].get("gossip") == i2["gossip"], "n2's gossip address: %r" % m2)
    for a in admins.values():
        h.wait_for(lambda: h.http_get(a, "/readyz")[0] == 200, 10, "/readyz 200 once joined")

    st, _, body = h.http_get(i1["admin"], "/metrics")
    text = body.decode()
    h.check(st == 200 and 'warren_gossip_members{state="alive"} 3' in text,
            "gossip members gauge on /metrics")
    for fam in ("warren_gossip_probes_total", "warren_gossip_suspicions_total",
                "warren_gossip_refutations_total", "warren_gossip_messages_total",
                "warren_gossip_bytes_total", "warren_gossip_decrypt_failures_total"):
        h.check(fam in text, "%s on /metrics" % fam)

    r = c.ctl("members", "--node", i1["admin"])
    lines = r.stdout.splitlines()
    h.check(lines[0].split() == ["ID", "STATE", "INC", "ROLE", "GOSSIP", "TUNNEL", "TUNNELS"],
            "warrenctl members header: %r" % lines[0])
    h.check(len(lines) == 4 and all("ALIVE" in l for l in lines[1:]),
            "warrenctl members rows:\n%s" % r.stdout)
    r = c.ctl("members", "--node", i1["admin"], "--json")
    h.check(len(json.loads(r.stdout)) == 3, "warrenctl members --json")

    # An agent on n2: n1 learns that n2 holds tunnel t1.
    svc = h.Service(h.echo_handler)
    c.agent(i2["listen"], "t1", {"echo": svc.addr}, name="a1")

    def n2_holds_t1():
        t = members(i1["admin"])["n2"]["tunnels"]
        return t.get("t1") == [{"agent": "a1", "weight": 1}] or (
            "t1" in t and t["t1"][0]["agent"] == "a1")

    h.wait_for(n2_holds_t1, 10, "n1 sees n2 holding t1 (agent a1)", interval=0.1)
    h.check(members(i1["admin"])["n1"]["tunnels"] == {}, "n1 holds no tunnel")

    # kill -9 n3: a failure, seen as DEAD.
    n3.kill9()
    for nid in ("n1", "n2"):
        h.wait_for(lambda: state_of(admins[nid], "n3") == "DEAD", 15,
                   "%s sees n3 DEAD" % nid, interval=0.1)
    h.check(n1.count("ev=member_dead member=n3") >= 1, "n1 logged n3's death")

    # SIGTERM n2: a graceful leave, seen as LEFT.
    n2.signal(signal.SIGTERM)
    h.wait_for(lambda: state_of(i1["admin"], "n2") == "LEFT", 10, "n1 sees n2 LEFT",
               interval=0.1)
    h.check(n2.wait(15) == 0, "n2 exited cleanly after SIGTERM")
    h.check("ev=gossip_leave" in n2.text(), "n2 logged its leave")
    h.check("loop_not_empty" not in n2.text(), "n2 closed every handle")
    h.check(n1.count("ev=member_left member=n2") >= 1, "n1 logged n2's leave")
    svc.close()

    # --advertise-addr: n4 binds wildcards and tells the others to use
    # 127.0.0.2; n1 reaches it there (it stays ALIVE through n1's probes).
    port = h.free_port("0.0.0.0", udp_too=True)
    n4, i4 = c.node(node_id="n4", cluster_key=key, listen="0.0.0.0:0",
                    gossip_addr="0.0.0.0:%d" % port, join=[i1["gossip"]],
                    extra=["--advertise-addr", "127.0.0.2",
                           "--advertise-tunnel-addr", "tunnel.example:7443"])
    h.wait_for(lambda: state_of(i1["admin"], "n4") == "ALIVE", 10, "n1 sees n4 ALIVE",
               interval=0.1)
    m4 = members(i1["admin"])["n4"]
    h.check(m4["addresses"].get("gossip") == "127.0.0.2:%d" % port, "n4's gossip address: %r" % m4)
    h.check(m4["addresses"].get("tunnel") == "tunnel.example:7443",
            "n4's advertised tunnel address: %r" % m4)
    h.wait_for(lambda: members(i4["admin"]).get("n1", {}).get("state") == "ALIVE", 10,
               "n4 sees n1 ALIVE")
    # n4 is n1's only live peer: every probe n1 sends goes to 127.0.0.2. Were
    # it unreachable there, n4 would be suspected and declared DEAD within
    # about a second (a busy machine may delay one ack: a suspicion that n4
    # refutes is not a failure, a death is).
    p0 = probes_sent(i1["admin"])
    h.wait_for(lambda: probes_sent(i1["admin"]) >= p0 + 6, 10, "n1 probes n4 six times")
    h.check(n1.count("ev=member_dead member=n4") == 0, "n1 reaches n4 at 127.0.0.2")
    h.check(state_of(i1["admin"], "n4") == "ALIVE", "n4 still ALIVE")
    r = c.ctl("members", "--node", i1["admin"])
    h.check("127.0.0.2:%d" % port in r.stdout, "warrenctl members shows it:\n" + r.stdout)


h.run(scenario, "gossip_nodes")
