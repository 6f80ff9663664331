"""Gossip key rotation across a live cluster (issue 3): three nodes share key
K1; warrenctl keyring install/use/remove moves them to K2 through their
admin APIs while they keep seeing each other ALIVE. Each node rewrites its
--cluster-key file, so a restarted node comes back with K2. A newcomer with
K2 joins; one with K1 is refused and its packets are counted. Bad requests
get clear errors: removing the primary (409), a body that is not a key
(400), the wrong method (405), a node without gossip (409), an unreachable
node (exit 2).
"""
import http.client
import json
import shutil

import harness as h

IDS = ["n1", "n2", "n3"]


def members(admin):
    st, _, body = h.http_get(admin, "/v1/members", timeout=5)
    h.check(st == 200, "/v1/members answered %d" % st)
    return {m["id"]: m for m in json.loads(body)}


def all_see(admins, ids, state="ALIVE"):
    for a in admins:
        ms = members(a)
        if any(ms.get(i, {}).get("state") != state for i in ids):
            return False
    return True


def metric(admin, name):
    st, _, body = h.http_get(admin, "/metrics", timeout=5)
    h.check(st == 200, "/metrics answered %d" % st)
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise h.TestFailure("%s not on /metrics" % name)


def post(admin, path, body):
    host, port = h.split_addr(admin)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def keyring(admin):
    st, _, body = h.http_get(admin, "/v1/keyring", timeout=5)
    h.check(st == 200, "/v1/keyring answered %d: %r" % (st, body))
    return json.loads(body)["keys"]


def key_lines(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def scenario(c):
    k1 = c.cluster_key()
    k2 = c.path("k2.key")
    c.ctl("keyring", "generate", "--out", k2)
    with open(k2) as f:
        k2_text = f.read().strip()
    files = {}
    for nid in IDS + ["n4", "n5"]:
        files[nid] = c.path("%s-keyring" % nid)
        shutil.copy(k1 if nid != "n4" else k2, files[nid])
    procs, infos = {}, {}
    procs["n1"], infos["n1"] = c.node(node_id="n1", cluster_key=files["n1"])
    for nid in IDS[1:]:
        procs[nid], infos[nid] = c.node(node_id=nid, cluster_key=files[nid],
                                        join=[infos["n1"]["gossip"]])
    admins = [infos[n]["admin"] for n in IDS]
    node_args = []
    for a in admins:
        node_args += ["--node", a]
    h.wait_for(lambda: all_see(admins, IDS), 15, "3 nodes ALIVE everywhere", interval=0.1)

    # One key everywhere, the same one.
    rings = [keyring(a) for a in admins]
    h.check(all(len(r) == 1 and r[0]["primary"] for r in rings), "one primary key: %r" % rings)
    fp1 = rings[0][0]["fingerprint"]
    h.check(all(r[0]["fingerprint"] == fp1 for r in rings), "same fingerprint: %r" % rings)
    r = c.ctl("keyring", "list", *node_args)
    h.check(r.stdout.count(fp1 + "*") == 3, "keyring list shows K1 as primary:\n" + r.stdout)

    fail0 = sum(metric(a, "warren_gossip_decrypt_failures_total") for a in admins)

    # Rotation: install everywhere, use everywhere, remove the old key everywhere.
    r = c.ctl("keyring", "install", "--key-file", k2, *node_args)
    h.check(r.stdout.count("changed") == 3, "install changed 3 nodes:\n" + r.stdout)
    rings = [keyring(a) for a in admins]
    h.check(all(len(x) == 2 for x in rings), "two keys after install: %r" % rings)
    fp2 = [k["fingerprint"] for k in rings[0] if k["fingerprint"] != fp1][0]
    h.check(all(k["fingerprint"] == fp1 for x in rings for k in x if k["primary"]),
            "K1 still primary after install")
    r = c.ctl("keyring", "install", "--key-file", k2, "--node", admins[0])
    h.check("unchanged" in r.stdout, "a second install changes nothing:\n" + r.stdout)

    r = c.ctl("keyring", "use", "--key-file", k2, *node_args)
    h.check(r.stdout.count("changed") == 3, "use changed 3 nodes:\n" + r.stdout)
    h.check(all(k["fingerprint"] == fp2 for a in admins for k in keyring(a) if k["primary"]),
            "K2 primary everywhere")

    # The primary cannot go.
    r = c.ctl("keyring", "remove", "--fingerprint", fp2, "--node", admins[0], check_rc=False)
    h.check(r.returncode == 3 and "primary" in r.stderr,
            "removing the primary refused (rc %d): %s" % (r.returncode, r.stderr))

    r = c.ctl("keyring", "remove", "--fingerprint", fp1, *node_args)
    h.check(r.stdout.count("changed") == 3 and r.stdout.count("yes") == 3,
            "remove changed and persisted on 3 nodes:\n" + r.stdout)
    rings = [keyring(a) for a in admins]
    h.check(all(len(x) == 1 and x[0]["fingerprint"] == fp2 for x in rings),
            "only K2 left: %r" % rings)

    # The files now hold K2 alone, so a restart keeps the rotation.
    for nid in IDS:
        h.check(key_lines(files[nid]) == [k2_text.rstrip("=").replace("+", "-").replace("/", "_")],
                "%s's key file rewritten to K2: %r" % (nid, key_lines(files[nid])))

    # Nobody was lost on the way, and hardly a packet (only ones in flight
    # while the last node switched could be sealed with K1).
    h.check(all_see(admins, IDS), "3 nodes still ALIVE after the rotation")
    fail1 = sum(metric(a, "warren_gossip_decrypt_failures_total") for a in admins)
    h.check(fail1 - fail0 <= 2, "decrypt failures during the rotation: %d" % (fail1 - fail0))

    # A newcomer with K2 joins; one with K1 cannot, and its packets are rejected.
    procs["n4"], infos["n4"] = c.node(node_id="n4", cluster_key=files["n4"],
                                      join=[infos["n2"]["gossip"]])
    h.wait_for(lambda: all_see(admins + [infos["n4"]["admin"]], IDS + ["n4"]), 15,
               "n4 (K2) joins", interval=0.1)
    before = metric(admins[0], "warren_gossip_decrypt_failures_total")
    procs["n5"], infos["n5"] = c.node(node_id="n5", cluster_key=files["n5"],
                                      join=[infos["n1"]["gossip"]])
    h.wait_for(lambda: metric(admins[0], "warren_gossip_decrypt_failures_total") >= before + 3,
               15, "n1 rejects n5's K1 packets")
    h.check("n5" not in members(admins[0]), "n5 (K1) is not a member")
    procs["n5"].stop()

    # n2 restarts from its rewritten file and is ALIVE again everywhere.
    procs["n2"].stop()
    procs["n2"], infos["n2"] = c.node(node_id="n2", cluster_key=files["n2"],
                                      join=[infos["n1"]["gossip"]])
    live = [infos[n]["admin"] for n in ("n1", "n2", "n3", "n4")]
    h.wait_for(lambda: all_see(live, ["n1", "n2", "n3", "n4"]), 15,
               "restarted n2 (K2 from its file) ALIVE everywhere", interval=0.1)

    # Bad requests: clear errors, nothing changed.
    st, _, body = post(admins[0], "/v1/keyring/install", b"{\"key\": \"c2hvcnQ\"}")
    h.check(st == 400 and b"32 bytes" in body, "short key refused: %d %r" % (st, body))
    st, _, body = post(admins[0], "/v1/keyring/use", b"not json")
    h.check(st == 400 and b"JSON" in body, "non-JSON body refused: %d %r" % (st, body))
    st, _, body = post(admins[0], "/v1/keyring/use", b"{\"fingerprint\": \"0000000000000000\"}")
    h.check(st == 404, "unknown fingerprint: %d %r" % (st, body))
    st, hdrs, _ = h.http_get(admins[0], "/v1/keyring/install")
    h.check(st == 405 and hdrs.get("allow") == "POST", "GET on a POST endpoint: %d %r" % (st, hdrs))
    st, hdrs, _ = post(admins[0], "/v1/members", b"")
    h.check(st == 405 and hdrs.get("allow") == "GET", "POST on a GET endpoint: %d %r" % (st, hdrs))
    h.check(len(keyring(admins[0])) == 1, "bad requests changed nothing")

    _, plain = c.node(node_id="plain")
    st, _, body = h.http_get(plain["admin"], "/v1/keyring")
    h.check(st == 409 and b"gossip is off" in body, "keyring without gossip: %d %r" % (st, body))

    r = c.ctl("keyring", "install", "--key-file", c.path("missing.key"), check_rc=False)
    h.check(r.returncode != 0 and "cannot read" in r.stderr, "missing key file: " + r.stderr)
    r = c.ctl("keyring", "list", "--node", "127.0.0.1:1", check_rc=False)
    h.check(r.returncode == 2, "unreachable node: rc %d %s" % (r.returncode, r.stderr))
    r = c.ctl("keyring", "use", "--node", admins[0], check_rc=False)
    h.check(r.returncode == 1 and "--key-file or --fingerprint" in r.stderr,
            "use needs a key: rc %d %s" % (r.returncode, r.stderr))


if __name__ == "__main__":
    h.run(scenario, "gossip_keyring")
