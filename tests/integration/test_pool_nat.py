"""An agent truly behind NAT (issue 4): "the agent runs in a network namespace
behind another namespace that masquerades (iptables) and drops inbound
connections; nodes, HAProxy and visitors run outside. The agent's services
are reachable through every node. The test creates and always removes its
namespaces."

Layout (names carry the pid, subnets X are picked free; all removed in the
end, also when the test fails):

  root ns  10.251.X.1 ==veth== 10.251.X.2  router ns  10.252.X.1 ==veth== 10.252.X.2  agent ns
  3 nodes, HAProxy,                        ip_forward=1, MASQUERADE              warren-agent,
  visitors                                 out of the outer veth; FORWARD        echo service
                                           drops NEW connections coming in       on :9000

The root ns gets a route to 10.252.X.0/24 via the router, so that an inbound
attempt really reaches the router (and is dropped there, not lost on the
default route). Checks:

(a) inbound is blocked: a connection from the root ns to the agent ns's echo
    service times out, while the same connection from the router ns works
    (the service is up; the NAT is what blocks), and the router's FORWARD
    DROP rule counted the attempt;
(b) the agent, given only HAProxy's address (10.251.X.1), holds a tunnel to
    each of the 3 nodes (/v1/tunnels on each; its metrics wanted == held ==
    3), its connections reach the root ns from the router's address
    (masqueraded, seen with ss) and never from the agent's own, and the
    MASQUERADE rule counted them;
(c) visitors from the root ns reach the echo service through each node's
    entry point directly, and through HAProxy.

Needs root (namespaces, iptables) and iptables. Runtime about 5 s.
"""
import os
import random
import shutil
import socket
import subprocess
import sys

import harness as h

N = 3
TUNNEL, SERVICE, AGENT = "t1", "echo", "a1"
ECHO_PORT = 9000

ECHO_SRC = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(128)
print("echo listening", flush=True)
def serve(c):
    with c:
        while True:
            b = c.recv(65536)
            if not b:
                return
            c.sendall(b)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# Connects to argv[1]:argv[2], sends a line, prints what came back (run in a namespace).
PROBE_SRC = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"from the router\n")
got = b""
while len(got) < 16:
    b = s.recv(64)
    if not b:
        break
    got += b
print(got.decode().strip())
"""


def sh(*argv, check_rc=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check_rc and r.returncode != 0:
        raise h.TestFailure("%s failed (%d): %s" % (" ".join(argv), r.returncode,
                                                    r.stderr.strip()))
    return r


class NatNet:
    """The namespaces, veths, route and iptables rules of one run; remove()
    undoes whatever create() made, in reverse, and reports what is left."""

    def __init__(self):
        tag = os.getpid() & 0xffff
        listed = sh("ip", "netns", "list").stdout
        self.suffix = "%04x" % tag
        if ("wrnat-%s-" % self.suffix) in listed:  # a leftover of a reused pid
            self.suffix = "%04x" % random.randrange(0x10000)
        used = sh("ip", "-4", "route", "show").stdout + sh("ip", "-4", "addr", "show").stdout
        for k in range(250):
            self.x = (tag + k) % 250 + 1
            if ("10.251.%d." % self.x) not in used and ("10.252.%d." % self.x) not in used:
                break
        else:
            raise h.TestFailure("no free 10.251.X.0/24 + 10.252.X.0/24 for the NAT test")
        self.router = "wrnat-%s-r" % self.suffix
        self.agent = "wrnat-%s-a" % self.suffix
        self.outer_root, self.outer_router = "wn%so0" % self.suffix, "wn%so1" % self.suffix
        self.inner_router, self.inner_agent = "wn%si0" % self.suffix, "wn%si1" % self.suffix
        self.root_ip = "10.251.%d.1" % self.x
        self.router_out_ip = "10.251.%d.2" % self.x
        self.router_in_ip = "10.252.%d.1" % self.x
        self.agent_ip = "10.252.%d.2" % self.x
        self.inner_net = "10.252.%d.0/24" % self.x
        self.made_ns = []
        self.made_veth = []
        self.made_route = False
        self.rules = []  # (table, chain, rule...) appended in the router ns

    def in_ns(self, ns, *argv, check_rc=True):
        return sh("ip", "netns", "exec", ns, *argv, check_rc=check_rc)

    def iptables(self, table, chain, *rule):
        self.in_ns(self.router, "iptables", "-w", "5", "-t", table, "-A", chain, *rule)
        self.rules.append((table, chain) + rule)

    def create(self):
        for ns in (self.router, self.agent):
            sh("ip", "netns", "add", ns)
            self.made_ns.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # root <-> router
        sh("ip", "link", "add", self.outer_root, "type", "veth", "peer", "name",
           self.outer_router)
        self.made_veth.append(self.outer_root)
        sh("ip", "link", "set", self.outer_router, "netns", self.router)
        sh("ip", "addr", "add", self.root_ip + "/24", "dev", self.outer_root)
        sh("ip", "link", "set", self.outer_root, "up")
        sh("ip", "-n", self.router, "addr", "add", self.router_out_ip + "/24", "dev",
           self.outer_router)
        sh("ip", "-n", self.router, "link", "set", self.outer_router, "up")
        # router <-> agent
        sh("ip", "-n", self.router, "link", "add", self.inner_router, "type", "veth", "peer",
           "name", self.inner_agent, "netns", self.agent)
        sh("ip", "-n", self.router, "addr", "add", self.router_in_ip + "/24", "dev",
           self.inner_router)
        sh("ip", "-n", self.router, "link", "set", self.inner_router, "up")
        sh("ip", "-n", self.agent, "addr", "add", self.agent_ip + "/24", "dev", self.inner_agent)
        sh("ip", "-n", self.agent, "link", "set", self.inner_agent, "up")
        sh("ip", "-n", self.agent, "route", "add", "default", "via", self.router_in_ip)
        # The router: forwards, masquerades outbound, lets in only replies.
        self.in_ns(self.router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.iptables("nat", "POSTROUTING", "-o", self.outer_router, "-j", "MASQUERADE")
        self.iptables("filter", "FORWARD", "-i", self.inner_router, "-o", self.outer_router,
                      "-j", "ACCEPT")
        self.iptables("filter", "FORWARD", "-i", self.outer_router, "-o", self.inner_router,
                      "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        self.iptables("filter", "FORWARD", "-i", self.outer_router, "-o", self.inner_router,
                      "-j", "DROP")
        # So that an inbound attempt from the root ns reaches the router's FORWARD chain.
        sh("ip", "route", "add", self.inner_net, "via", self.router_out_ip, "dev",
           self.outer_root)
        self.made_route = True

    def counter(self, table, chain, target):
        """Packets counted by the router's rule of <chain> that jumps to <target>."""
        out = self.in_ns(self.router, "iptables", "-w", "5", "-t", table, "-L", chain, "-v",
                         "-n", "-x").stdout
        for line in out.splitlines():
            f = line.split()
            if len(f) > 2 and f[2] == target and f[0].isdigit():
                return int(f[0])
        raise h.TestFailure("no %s rule in the router's %s %s:\n%s" % (target, table, chain, out))

    def remove(self):
        errors = []
        for rule in reversed(self.rules):
            table, chain = rule[0], rule[1]
            r = self.in_ns(self.router, "iptables", "-w", "5", "-t", table, "-D", chain,
                           *rule[2:], check_rc=False)
            if r.returncode != 0:
                errors.append("iptables -t %s -D %s %s: %s"
                              % (table, chain, " ".join(rule[2:]), r.stderr.strip()))
        if self.made_route:
            sh("ip", "route", "del", self.inner_net, check_rc=False)
        for ns in reversed(self.made_ns):
            r = sh("ip", "netns", "delete", ns, check_rc=False)
            if r.returncode != 0:
                errors.append("ip netns delete %s: %s" % (ns, r.stderr.strip()))
        for v in self.made_veth:  # gone with the router ns holding its peer; make sure
            if sh("ip", "link", "show", v, check_rc=False).returncode == 0:
                sh("ip", "link", "delete", v, check_rc=False)
        listed = [line.split()[0] for line in
                  sh("ip", "netns", "list", check_rc=False).stdout.splitlines() if line.strip()]
        left = [ns for ns in (self.router, self.agent) if ns in listed]
        if left:
            errors.append("namespaces still listed: %s" % left)
        for v in self.made_veth:
            if sh("ip", "link", "show", v, check_rc=False).returncode == 0:
                errors.append("veth %s still present" % v)
        if self.inner_net.split("/")[0] in sh("ip", "-4", "route", "show").stdout:
            errors.append("route to %s still present" % self.inner_net)
        return errors


def visit(addr, i):
    msg = b"visitor %d via %s\n" % (i, addr.encode())
    s = h.connect(addr, timeout=5)
    try:
        s.sendall(msg)
        s.shutdown(socket.SHUT_WR)
        got = h.recv_all(s)
    finally:
        s.close()
    h.check(got == msg, "visitor %d via %s echoed %r" % (i, addr, got))


def established_peers(port):
    """Peer IPs of the root ns's established TCP connections to local <port>."""
    out = sh("ss", "-Htn", "state", "established", "( sport = :%d )" % port).stdout
    return [line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()]


def scenario(c, net):
    if os.geteuid() != 0:
        raise h.TestFailure("the NAT test needs root (network namespaces, iptables)")
    for tool in ("iptables", "ip", "ss"):
        if shutil.which(tool) is None:
            raise h.TestFailure("%s is not installed (tools/deps.sh test); the NAT test "
                                "needs it" % tool)
    net.create()
    print("namespaces %s (router), %s (agent); root %s, router %s / %s, agent %s"
          % (net.router, net.agent, net.root_ip, net.router_out_ip, net.router_in_ip,
             net.agent_ip))

    # The service runs inside the agent's namespace, on all its addresses.
    echo_py = c.path("echo_server.py")
    with open(echo_py, "w") as f:
        f.write(ECHO_SRC)
    echo = c.start("echo-in-ns", ["ip", "netns", "exec", net.agent, sys.executable, echo_py,
                                  str(ECHO_PORT)])
    h.wait_for(lambda: "echo listening" in echo.text() or not echo.alive(), 10,
               "echo service listening in %s" % net.agent)
    h.check(echo.alive(), "echo service exited:\n" + echo.text())

    # (a) Inbound is blocked by the NAT, not by a missing service.
    probe_py = c.path("probe.py")
    with open(probe_py, "w") as f:
        f.write(PROBE_SRC)
    r = net.in_ns(net.router, sys.executable, probe_py, net.agent_ip, str(ECHO_PORT),
                  check_rc=False)
    h.check(r.returncode == 0 and r.stdout.strip() == "from the router",
            "control: the router ns reaches the echo service at %s:%d (rc %d): %r %r"
            % (net.agent_ip, ECHO_PORT, r.returncode, r.stdout, r.stderr))
    drops0 = net.counter("filter", "FORWARD", "DROP")
    try:
        s = socket.create_connection((net.agent_ip, ECHO_PORT), timeout=2)
        s.close()
        raise h.TestFailure("inbound connection from the root ns to %s:%d succeeded: the "
                            "agent is not behind NAT" % (net.agent_ip, ECHO_PORT))
    except socket.timeout:
        pass
    except OSError as e:
        raise h.TestFailure("inbound attempt to %s:%d should time out (dropped), got %r"
                            % (net.agent_ip, ECHO_PORT, e))
    drops = net.counter("filter", "FORWARD", "DROP") - drops0
    h.check(drops >= 1, "the router's FORWARD DROP counted the inbound attempt: %d" % drops)
    print("(a) inbound to %s:%d from the root ns timed out (%d packets dropped by the "
          "router); from the router ns it echoed" % (net.agent_ip, ECHO_PORT, drops))

    # The fleet, on the root side of the outer veth.
    key = c.cluster_key()
    procs, infos = {}, {}
    for i in range(1, N + 1):
        nid = "n%d" % i
        join = [infos["n1"]["gossip"]] if i > 1 else []
        procs[nid], infos[nid] = c.node(
            entries=["%s:0=%s/%s" % (net.root_ip, TUNNEL, SERVICE)], node_id=nid,
            listen="%s:0" % net.root_ip, cluster_key=key, join=join,
            extra=["--ping-interval", "1s", "--ping-timeout", "3s"])
    ids = sorted(infos)
    h.wait_for(lambda: all(h.alive_members(infos[x]["admin"]) == ids for x in ids), 15,
               "%d nodes see each other ALIVE" % N, interval=0.1)
    lb = h.HAProxy(c, "haproxy", balance="roundrobin", host=net.root_ip)
    entry = "%s/%s" % (TUNNEL, SERVICE)
    lb.start({"tunnel": [infos[x]["listen"] for x in ids],
              "web": [infos[x]["entries"][entry] for x in ids]})

    # (b) The agent, in its namespace, given only HAProxy's address.
    mfile = c.path("agent.prom")
    masq0 = net.counter("nat", "POSTROUTING", "MASQUERADE")
    agent = c.agent(lb.listener("tunnel"), TUNNEL, {SERVICE: "127.0.0.1:%d" % ECHO_PORT},
                    name=AGENT, wrap=["ip", "netns", "exec", net.agent],
                    extra=["--metrics-file", mfile, "--ping-interval", "1s",
                           "--ping-timeout", "3s"])
    h.wait_for(lambda: all(h.holds_agent(infos[x]["admin"], TUNNEL, AGENT) for x in ids), 20,
               "the agent behind NAT holds a tunnel to each of the %d nodes" % N, interval=0.05)
    m = h.read_prom(mfile)
    h.check(m.get("warren_agent_nodes_wanted") == N and m.get("warren_agent_nodes_held") == N,
            "agent metrics: wanted %r held %r" % (m.get("warren_agent_nodes_wanted"),
                                                  m.get("warren_agent_nodes_held")))
    tport = h.split_addr(lb.listener("tunnel"))[1]
    peers = established_peers(tport)
    h.check(net.agent_ip not in peers, "a connection reached HAProxy from the agent's own "
            "address %s (not masqueraded): %s" % (net.agent_ip, peers))
    h.check(peers.count(net.router_out_ip) >= N,
            "the agent's %d tunnels reach HAProxy (:%d) from the router's address %s: %s"
            % (N, tport, net.router_out_ip, peers))
    masq = net.counter("nat", "POSTROUTING", "MASQUERADE") - masq0
    h.check(masq >= 1, "the router's MASQUERADE counted the agent's connections: %d" % masq)
    print("(b) agent holds all %d nodes through NAT: tunnels to HAProxy from %s %s; "
          "%d connections masqueraded" % (N, net.router_out_ip, peers, masq))

    # (c) Visitors from the root ns, through every node and through HAProxy.
    for x in ids:
        before = h.node_metric(infos[x]["admin"], "warren_node_streams_opened_total") or 0
        for i in range(3):
            visit(infos[x]["entries"][entry], i)
        after = h.node_metric(infos[x]["admin"], "warren_node_streams_opened_total")
        h.check(after >= before + 3, "%s opened the streams to its own agent link: %r -> %r"
                % (x, before, after))
    for i in range(3 * N):
        visit(lb.listener("web"), i)
    h.check(agent.alive(), "the agent kept running")
    print("(c) visitors reached the echo service in %s through each of %s and HAProxy"
          % (net.agent, ids))


def main():
    net = NatNet()
    errors = []

    def test(c):
        try:
            scenario(c, net)
        finally:
            c.stop_all()  # the processes go before their namespaces
            errors.extend(net.remove())
            for e in errors:
                print("CLEANUP ERROR: " + e)
            print("removed namespaces %s, %s, veth %s, route %s and the router's rules"
                  % (net.router, net.agent, net.outer_root, net.inner_net))
        h.check(not errors, "cleanup: %s" % "; ".join(errors))

    h.run(test, "pool_nat")


if __name__ == "__main__":
    main()
