"""Bad command lines and bad files: warren-node, warren-agent and warrenctl
exit with status 1 (usage) or 3 (warrenctl: bad material) and say what is
wrong, naming the flag or the file; nothing starts half-configured.
"""
import os
import subprocess

import harness as h


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


def expect(argv, code, needle):
    rc, out = run(argv)
    h.check(rc == code, "%r: exit %d, expected %d:\n%s" % (argv[1:], rc, code, out))
    h.check(needle in out, "%r: %r not in:\n%s" % (argv[1:], needle, out))


def scenario(c):
    node, agent, ctl = h.NODE, h.AGENT, h.WARRENCTL
    for b in (node, agent):
        rc, out = run([b, "--help"])
        h.check(rc == 0 and "usage:" in out, "%s --help" % b)
    expect([node], 1, "--cert, --key and --ca are required")
    expect([node, "--window", "12"], 1, "invalid --window '12'")
    expect([node, "--ping-interval", "5x"], 1, "invalid duration '5x' for --ping-interval")
    expect([node, "--entry", "127.0.0.1:1=onlytunnel"], 1, "expected ADDR=TUNNEL/SERVICE")
    expect([node, "--entry", "nowhere:80=t/s"], 1, "bad address")
    expect([node, "--log-level", "loud"], 1, "invalid --log-level 'loud'")
    expect([node, "--admin-addr", "nope"], 1, "invalid --admin-addr 'nope'")
    expect([node, "--bogus"], 1, "see warren-node --help")
    expect([node, "--advertise-addr", "0.0.0.0"], 1, "invalid --advertise-addr '0.0.0.0'")
    expect([node, "--advertise-addr", "10.0.0.1:7946"], 1, "use a specific IP, no port")
    expect([node, "--advertise-tunnel-addr", "fleet.example"], 1,
           "invalid --advertise-tunnel-addr 'fleet.example'")
    expect([agent, "--max-dials", "0"], 1, "invalid --max-dials '0'")
    badkey = c.path("bad.key")
    with open(badkey, "w") as f:
        f.write("# a comment, then a short key\nAAAA\n")
    expect([node, "--cert", "x", "--key", "x", "--ca", "x", "--cluster-key", badkey], 1,
           "line 2 is not a 32-byte key")
    goodkey = c.cluster_key()
    expect([node, "--cert", "x", "--key", "x", "--ca", "x", "--cluster-key", goodkey,
            "--advertise-addr", "127.0.0.2", "--gossip-addr", "127.0.0.1:0"], 1,
           "--advertise-addr needs a fixed --gossip-addr port")
    expect([agent, "--weight", "0"], 1, "invalid --weight '0'")
    expect([agent, "--service", "web"], 1, "expected NAME=IP:PORT")
    expect([agent, "--proxy", "nohost"], 1, "expected HOST:PORT")
    expect([agent, "--proxy", "a:1", "--tunnel", "t", "--token", "x", "--ca", "y"], 1,
           "at least one --service")

    # Files that do not exist or hold the wrong thing: a clear error, exit 1.
    missing = c.path("missing.crt")
    expect([node, "--cert", missing, "--key", missing, "--ca", missing, "--listen",
            "127.0.0.1:0"], 1, "cannot read the CA certificate")
    crt, key = c.path("n.crt"), c.path("n.key")
    c.ctl("cert", "issue", "--ca-dir", c.ca_dir, "--node-id", "n", "--out-cert", crt,
          "--out-key", key)
    expect([node, "--cert", crt, "--key", c.ca, "--ca", c.ca, "--listen", "127.0.0.1:0"], 1,
           "cannot load the certificate or key")
    empty = c.path("empty.token")
    open(empty, "w").close()
    expect([agent, "--proxy", "127.0.0.1:1", "--tunnel", "t", "--token", empty, "--ca", c.ca,
            "--service", "s=127.0.0.1:1"], 1, "holds no token")

    # warrenctl: usage errors exit 1, invalid material 3.
    expect([ctl, "token", "create", "--ca-dir", c.ca_dir, "--tunnel", "bad id!", "--ttl", "1h"],
           1, "tunnel")
    expect([ctl, "ca", "init", "--dir", c.ca_dir, "--cluster", "c1"], 3, "")
    tok = c.path("t.token")
    c.ctl("token", "create", "--ca-dir", c.ca_dir, "--tunnel", "t", "--ttl", "1h", "--out", tok)
    h.check(oct(os.stat(tok).st_mode & 0o777) == "0o600", "token file mode")
    expect([ctl, "token", "inspect", "--ca-dir", c.ca_dir, "--file", tok], 0, "valid")
    with open(tok) as f:
        t = f.read().strip()
    expect([ctl, "token", "inspect", "--ca-dir", c.ca_dir, t[:-3] + ("A" if t[-3] != "A" else "B")
            + t[-2:]], 3, "invalid")


h.run(scenario, "cli_errors")
