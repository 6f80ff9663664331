"""A network partition of a 5-node gossip cluster (issue 3): "5 nodes in their own
namespaces on a bridge; cut 2 from 3 (iptables drop), each side marks the other
dead; heal, and all converge again."

The test creates, and always removes (also when it fails), a Linux bridge in the
root namespace with 10.250.X.1/24 (X random), and 5 network namespaces, each with
a veth into the bridge and 10.250.X.(10+i)/24. Only those addresses and loopback
are ever addressed. Names carry a random suffix so that a leftover never
collides. Each warren-node runs inside its namespace through `ip netns exec`
(which execs the node, so the harness's PID is the node's), gossip on
IP:7946 and the admin API on IP:7480, which the test polls from the root
namespace over the bridge.

(a) All 5 converge: every node lists 5 ALIVE members.
(b) Partition {n1,n2,n3} | {n4,n5}: iptables DROP (INPUT and OUTPUT) in each
    namespace for the other side's addresses. Within 20 s n1-n3 hold n4,n5 DEAD
    and n4,n5 hold n1-n3 DEAD, while each side keeps its own members ALIVE.
(c) 5 s later, heal (flush the rules): within 45 s every node lists 5 ALIVE
    members again (DEAD members must be rediscovered).

Guards the fix for what this test found (2026-11-22): once the queued dead
notices had drained, nothing crossed a healed partition (gossip to DEAD members
only carries queued updates, push/pull went to live members only), and after
reap (60 s) each side forgot the other for good. Members now push/pull with one
random DEAD member every reconnect interval (5 s), as Serf's reconnect does.
Partitions longer than the 60 s reap still need a --join seed to be retried.

Needs root (namespaces, iptables) and iptables (tools/deps.sh test). Runtime
about 15 s.
"""
import json
import os
import random
import shutil
import subprocess
import time

import harness as h

N = 5
SIDE_A = [1, 2, 3]
SIDE_B = [4, 5]
GOSSIP_PORT = 7946
ADMIN_PORT = 7480
CONVERGE_S = 20
DEAD_S = 20
HEAL_S = 45
HOLD_S = 5  # the partition lasts this long after both sides hold the other DEAD


def sh(*argv, check_rc=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check_rc and r.returncode != 0:
        raise h.TestFailure("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                    r.stderr.strip()))
    return r


class Net:
    """The bridge, namespaces and veths of one run; remove() undoes whatever was made."""

    def __init__(self):
        self.suffix = "%04x" % random.randrange(0x10000)
        used = sh("ip", "-4", "route", "show").stdout + sh("ip", "-4", "addr", "show").stdout
        for _ in range(50):
            self.x = random.randint(1, 250)
            if ("10.250.%d." % self.x) not in used:
                break
        else:
            raise h.TestFailure("no free 10.250.X.0/24 for the test bridge")
        self.bridge = "wrpbr" + self.suffix
        self.ns = {i: "wrp-%s-%d" % (self.suffix, i) for i in range(1, N + 1)}
        self.made_bridge = False
        self.made_ns = []
        self.made_veth = []

    def ip(self, i):
        return "10.250.%d.%d" % (self.x, 10 + i)

    def create(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.made_bridge = True
        sh("ip", "addr", "add", "10.250.%d.1/24" % self.x, "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(1, N + 1):
            ns = self.ns[i]
            host_if, ns_if = "wrp%sh%d" % (self.suffix, i), "wrp%sn%d" % (self.suffix, i)
            sh("ip", "netns", "add", ns)
            self.made_ns.append(ns)
            sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            self.made_veth.append(host_if)
            sh("ip", "link", "set", host_if, "master", self.bridge)
            sh("ip", "link", "set", host_if, "up")
            sh("ip", "link", "set", ns_if, "netns", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", self.ip(i) + "/24", "dev", ns_if)
            sh("ip", "-n", ns, "link", "set", ns_if, "up")

    def iptables(self, i, *args):
        sh("ip", "netns", "exec", self.ns[i], "iptables", "-w", "5", *args)

    def remove(self):
        errors = []
        for ns in self.made_ns:
            r = sh("ip", "netns", "delete", ns, check_rc=False)
            if r.returncode != 0:
                errors.append("ip netns delete %s: %s" % (ns, r.stderr.strip()))
        for v in self.made_veth:  # gone with their namespace's peer; make sure
            if sh("ip", "link", "show", v, check_rc=False).returncode == 0:
                sh("ip", "link", "delete", v, check_rc=False)
        if self.made_bridge:
            r = sh("ip", "link", "delete", self.bridge, check_rc=False)
            if r.returncode != 0:
                errors.append("ip link delete %s: %s" % (self.bridge, r.stderr.strip()))
        listed = sh("ip", "netns", "list", check_rc=False).stdout
        left = [ns for ns in self.ns.values() if ns in listed.split()
                or any(line.split()[0] == ns for line in listed.splitlines() if line.strip())]
        if left:
            errors.append("namespaces still listed: %s" % left)
        if sh("ip", "link", "show", self.bridge, check_rc=False).returncode == 0:
            errors.append("bridge %s still present" % self.bridge)
        return errors


def members(admin):
    """{id: state} as the node at admin sees it, or None if it cannot be asked now."""
    try:
        st, _, body = h.http_get(admin, "/v1/members", timeout=2)
    except OSError:
        return None
    if st != 200:
        return None
    return {m["id"]: m["state"] for m in json.loads(body)}


def scenario(c, net):
    if shutil.which("iptables") is None:
        raise h.TestFailure("iptables is not installed (tools/deps.sh test installs it); "
                            "the partition test needs it")
    if os.geteuid() != 0:
        raise h.TestFailure("the partition test needs root (network namespaces, iptables)")
    net.create()
    key = c.cluster_key()
    ids = ["n%d" % i for i in range(1, N + 1)]
    admin = {i: "%s:%d" % (net.ip(i), ADMIN_PORT) for i in range(1, N + 1)}
    seed = "%s:%d" % (net.ip(1), GOSSIP_PORT)
    procs = {}
    t0 = time.monotonic()
    for i in range(1, N + 1):
        nid = "n%d" % i
        crt, keyf = c.path(nid + ".crt"), c.path(nid + ".key")
        c.ctl("cert", "issue", "--ca-dir", c.ca_dir, "--node-id", nid,
              "--out-cert", crt, "--out-key", keyf)
        ready = c.path(nid + ".ready")
        argv = ["ip", "netns", "exec", net.ns[i], h.NODE,
                "--listen", "%s:0" % net.ip(i), "--cert", crt, "--key", keyf, "--ca", c.ca,
                "--node-id", nid, "--ready-file", ready,
                "--admin-addr", admin[i], "--cluster-key", key,
                "--gossip-addr", "%s:%d" % (net.ip(i), GOSSIP_PORT)]
        if i != 1:
            argv += ["--join", seed]
        p = c.start(nid, argv)
        procs[i] = p
        h.wait_for(lambda: os.path.exists(ready) or not p.alive(), 10, "node %s ready" % nid)
        h.check(p.alive(), "node %s exited at start:\n%s" % (nid, p.text()))

    last = {}

    def views():
        v = {i: members(admin[i]) for i in range(1, N + 1)}
        last["v"] = v
        return v

    def all_alive():
        v = views()
        return all(m is not None and sorted(m) == ids and all(s == "ALIVE" for s in m.values())
                   for m in v.values())

    def wait(cond, timeout, what):
        try:
            h.wait_for(cond, timeout, what, interval=0.25)
        except h.TestFailure:
            print("last views (node -> {member: state}):")
            for i, m in sorted(last.get("v", {}).items()):
                print("  n%d: %r" % (i, m))
            raise

    # (a) converge.
    wait(all_alive, CONVERGE_S, "all %d nodes list %d ALIVE members (if none see each "
         "other, check that bridged traffic is not dropped by the root namespace's "
         "FORWARD chain with br_netfilter)" % (N, N))
    print("(a) %d nodes in %d namespaces converged in %.1fs" % (N, N, time.monotonic() - t0))

    # (b) partition.
    t1 = time.monotonic()
    for side, other in ((SIDE_A, SIDE_B), (SIDE_B, SIDE_A)):
        for i in side:
            for j in other:
                net.iptables(i, "-I", "INPUT", "-s", net.ip(j), "-j", "DROP")
                net.iptables(i, "-I", "OUTPUT", "-d", net.ip(j), "-j", "DROP")

    def split_seen():
        v = views()
        for side, other in ((SIDE_A, SIDE_B), (SIDE_B, SIDE_A)):
            for i in side:
                m = v[i]
                if m is None:
                    return False
                h.check(all(m.get("n%d" % j) == "ALIVE" for j in side),
                        "n%d lost a member of its own side during the partition: %r" % (i, m))
                if not all(m.get("n%d" % j) == "DEAD" for j in other):
                    return False
        return True

    wait(split_seen, DEAD_S, "n1-n3 hold n4,n5 DEAD and n4,n5 hold n1-n3 DEAD")
    print("(b) partition %r | %r: each side holds the other DEAD after %.1fs"
          % (SIDE_A, SIDE_B, time.monotonic() - t1))
    for i in range(1, N + 1):
        h.check(procs[i].alive(), "n%d exited during the partition" % i)

    # A partition lasts a while: past the retransmits of the DEAD updates, so
    # that the heal does not depend on their still being queued.
    time.sleep(HOLD_S)  # the partition's wall-clock length is what is tested
    # (c) heal.
    t2 = time.monotonic()
    for i in range(1, N + 1):
        net.iptables(i, "-F", "INPUT")
        net.iptables(i, "-F", "OUTPUT")
    wait(all_alive, HEAL_S, "all %d nodes list %d ALIVE members again after the heal "
         "(DEAD members must be rediscovered)" % (N, N))
    print("(c) healed: all %d nodes list %d ALIVE members again after %.1fs"
          % (N, N, time.monotonic() - t2))
    for i in range(1, N + 1):
        h.check(procs[i].alive(), "n%d exited" % i)


def main():
    net = Net()
    errors = []

    def test(c):
        try:
            scenario(c, net)
        finally:
            c.stop_all()  # the nodes go before their namespaces
            errors.extend(net.remove())
            for e in errors:
                print("CLEANUP ERROR: " + e)
            print("removed namespaces %s and bridge %s" % (sorted(net.ns.values()), net.bridge))
        h.check(not errors, "cleanup: %s" % "; ".join(errors))

    h.run(test, "gossip_partition")


if __name__ == "__main__":
    main()
