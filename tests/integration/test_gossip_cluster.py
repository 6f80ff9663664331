"""A 16-node gossip cluster of real warren-node processes on loopback (issue 3),
checked with `warrenctl converge`:

(a) 16 nodes, each joining the first, converge: `warrenctl converge` over all
    16 exits 0 (every view lists 16 ALIVE members with the same incarnations and
    tunnel sets, also once an agent on n5 holds tunnel t1); it exits 2 when a node cannot be reached and 1 without --node.
(b) No false positive: one node SIGSTOPped for 1 s (the minimum suspicion
    timeout at n = 16 is 1.81 s with the defaults, docs/gossip.md, on top of the
    failed probe) and then SIGCONTed is never declared dead by any other node,
    and the cluster converges again.
(c) A node with another cluster key joining through the first cannot join: no
    node ever lists it, and the first node counts its packets in
    warren_gossip_decrypt_failures_total.

Everything polls with deadlines; the only fixed sleep is the SIGSTOP pause,
whose wall-clock length is what (b) tests.
"""
import json
import re
import signal
import time

import harness as h

N = 16
PAUSE_S = 1.0  # well below the 1.81 s minimum suspicion timeout at n = 16


def members(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    h.check(st == 200, "/v1/members answered %d" % st)
    return {m["id"]: m for m in json.loads(body)}


def decrypt_failures(admin):
    st, _, body = h.http_get(admin, "/metrics", timeout=5)
    h.check(st == 200, "/metrics answered %d" % st)
    m = re.search(r"^warren_gossip_decrypt_failures_total(?:\{[^}]*\})? (\d+)",
                  body.decode(), re.M)
    h.check(m is not None, "warren_gossip_decrypt_failures_total on /metrics")
    return int(m.group(1))


def scenario(c):
    key = c.cluster_key()
    t0 = time.monotonic()
    procs, infos = {}, {}
    p, i1 = c.node(node_id="n1", cluster_key=key)
    procs["n1"], infos["n1"] = p, i1
    for k in range(2, N + 1):
        nid = "n%d" % k
        procs[nid], infos[nid] = c.node(node_id=nid, cluster_key=key, join=[i1["gossip"]])
    ids = ["n%d" % k for k in range(1, N + 1)]
    node_args = []
    for nid in ids:
        node_args += ["--node", infos[nid]["admin"]]

    last = {}

    def converged():
        r = c.ctl("converge", "--json", *node_args, check_rc=False)
        last["r"] = r
        if r.returncode != 0:
            return False
        doc = json.loads(r.stdout)
        got = sorted(m["id"] for m in doc["members"])
        h.check(doc["agree"] and got == sorted(ids), "converge says agree: %r" % got)
        for m in doc["members"]:
            h.check(len(m["views"]) == N, "%s: %d views" % (m["id"], len(m["views"])))
        return all(v["state"] == "ALIVE" for m in doc["members"] for v in m["views"])

    def wait_converged(what):
        try:
            h.wait_for(converged, 15, what, interval=0.2)
        except h.TestFailure:
            r = last.get("r")
            if r is not None:
                print("last converge (rc %d):\n%s\n%s" % (r.returncode, r.stdout[-4000:],
                                                          r.stderr[-2000:]))
            raise

    # (a) 16 nodes converge.
    wait_converged("warrenctl converge over %d nodes exits 0" % N)
    print("(a) %d nodes converged %.1fs after the first started" % (N, time.monotonic() - t0))
    # A tunnel set travels: an agent on n5, every view of n5 shows t1=a1:1.
    svc = h.Service(h.echo_handler)
    c.agent(infos["n5"]["listen"], "t1", {"echo": svc.addr}, name="a1")

    def n5_tunnels():
        if not converged():
            return False
        doc = json.loads(last["r"].stdout)
        m5 = [m for m in doc["members"] if m["id"] == "n5"][0]
        return all(v["tunnels"] == "t1=a1:1" for v in m5["views"])

    h.wait_for(n5_tunnels, 15, "every view shows n5 holding t1=a1:1", interval=0.2)
    r = c.ctl("converge", *node_args, check_rc=False)
    lines = r.stdout.splitlines()
    h.check(r.returncode == 0, "converge (table) exits 0: %d\n%s" % (r.returncode, r.stderr))
    h.check(lines[0].split() == ["MEMBER", "VIEW", "FROM", "STATE", "INC", "TUNNELS", "DIFFERS"],
            "converge header: %r" % lines[0])
    h.check(re.search(r"^n5\s+n9\s+ALIVE\s+\d+\s+t1=a1:1\s*$", r.stdout, re.M),
            "converge row for n5 seen from n9:\n%s" % r.stdout[-3000:])
    h.check(len(lines) == 1 + N * N + 2 and "all views agree" in lines[-1],
            "converge rows and summary:\n%s" % r.stdout[-2000:])
    r = c.ctl("converge", "--node", infos["n1"]["admin"], "--node", "127.0.0.1:1",
              check_rc=False)
    h.check(r.returncode == 2, "converge with an unreachable node exits 2: %d" % r.returncode)
    r = c.ctl("converge", check_rc=False)
    h.check(r.returncode == 1, "converge without --node exits 1: %d" % r.returncode)
    r = c.ctl("converge", "--node", infos["n1"]["admin"], "--bogus", check_rc=False)
    h.check(r.returncode == 1, "converge with an unknown option exits 1: %d" % r.returncode)

    # (b) SIGSTOP n16 for less than the suspicion timeout: never declared dead.
    victim = "n%d" % N
    dead_re = re.compile(r"ev=member_dead member=%s\b" % victim)
    procs[victim].signal(signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)  # the pause's wall-clock length is what is tested
    finally:
        procs[victim].signal(signal.SIGCONT)
    wait_converged("converge exits 0 again after %s's SIGSTOP/SIGCONT" % victim)
    for nid in ids:
        if nid != victim:
            h.check(not dead_re.search(procs[nid].text()),
                    "%s declared %s dead after a %.1fs pause" % (nid, victim, PAUSE_S))
    print("(b) %s paused %.1fs: no node declared it dead" % (victim, PAUSE_S))

    # (c) A node with another key cannot join through n1.
    other = c.path("other.key")
    c.ctl("keyring", "generate", "--out", other)
    before = decrypt_failures(i1["admin"])
    bad, ibad = c.node(node_id="bad", cluster_key=other, join=[i1["gossip"]])

    def rejected():
        for nid in ids:
            h.check("bad" not in members(infos[nid]["admin"]),
                    "%s lists the node with the wrong key" % nid)
        return decrypt_failures(i1["admin"]) > before

    h.wait_for(rejected, 10, "n1 counts the wrong-key node's packets as decrypt failures",
               interval=0.2)
    h.check(decrypt_failures(i1["admin"]) > 0, "decrypt failures above 0")
    h.check(bad.alive(), "the wrong-key node keeps running")
    h.check(sorted(members(ibad["admin"])) == ["bad"], "the wrong-key node sees only itself")
    # Views that disagree: the wrong-key node lists only itself, n1 lists 16.
    r = c.ctl("converge", "--node", i1["admin"], "--node", ibad["admin"], check_rc=False)
    h.check(r.returncode == 3, "converge over n1 and the wrong-key node exits 3: %d\n%s"
            % (r.returncode, r.stdout[-2000:]))
    h.check(re.search(r"^bad\s+n1\s+MISSING\s+-\s+-\s+missing$", r.stdout, re.M),
            "converge marks 'bad' missing from n1's view:\n%s" % r.stdout[-2000:])
    h.check("%d of %d member(s) differ" % (N + 1, N + 1) in r.stdout,
            "converge summary:\n%s" % r.stdout[-300:])
    r = c.ctl("converge", "--json", "--node", i1["admin"], "--node", ibad["admin"],
              check_rc=False)
    doc = json.loads(r.stdout)
    h.check(r.returncode == 3 and doc["agree"] is False and
            all(m["differs"] == ["missing"] for m in doc["members"]),
            "converge --json over n1 and the wrong-key node:\n%s" % r.stdout[-1000:])
    wait_converged("the %d nodes still converge without the wrong-key node" % N)
    for nid in ids:
        h.check("bad" not in members(infos[nid]["admin"]),
                "%s lists the node with the wrong key" % nid)
    # Checked again later: every view had it ALIVE, so no suspicion timer was left.
    for nid in ids:
        if nid != victim:
            h.check(not dead_re.search(procs[nid].text()),
                    "%s declared %s dead after a %.1fs pause" % (nid, victim, PAUSE_S))
    print("(c) wrong key rejected: n1 decrypt failures %d" % decrypt_failures(i1["admin"]))
    svc.close()
    print("total %.1fs" % (time.monotonic() - t0))


h.run(scenario, "gossip_cluster")
