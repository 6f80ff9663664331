#!/usr/bin/env python3
"""Keeps the --help texts quoted in docs/operations.md equal to what the
binaries print. Each quoted block is a fenced block right under a heading
listed in BLOCKS; its text is the output of the commands given there, one
after the other, separated by a blank line.

usage: tools/docs_help.py --check|--write BUILD_DIR
  --check  exit 1 (and print a diff) when a block differs
  --write  rewrite the blocks in place
"""
import difflib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "operations.md")

# heading -> (binary relative to the build dir, [argument lists])
BLOCKS = {
    "## warren-node": ("node/warren-node", [["--help"]]),
    "## warren-agent": ("agent/warren-agent", [["--help"]]),
    "## warren-lb": ("lb/warren-lb", [["--help"]]),
    "## warrenctl": ("tools/warrenctl", [["--help"], ["status", "--help"], ["tunnels", "--help"],
                                        ["members", "--help"], ["converge", "--help"],
                                        ["ca", "--help"], ["cert", "--help"],
                                        ["token", "--help"], ["keyring", "--help"]]),
}


def render(build, binary, runs):
    out = []
    for args in runs:
        r = subprocess.run([os.path.join(build, binary)] + args, capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            sys.exit("%s %s exited %d" % (binary, " ".join(args), r.returncode))
        out.append(r.stdout.rstrip("\n"))
    return "\n\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("--check", "--write"):
        sys.exit(__doc__)
    mode, build = sys.argv[1], sys.argv[2]
    with open(DOC) as f:
        lines = f.read().split("\n")
    bad = 0
    for heading, (binary, runs) in BLOCKS.items():
        try:
            h = lines.index(heading)
            start = lines.index("```", h) + 1
            end = lines.index("```", start)
        except ValueError:
            print("docs/operations.md: no fenced block under '%s'" % heading)
            bad += 1
            continue
        want = render(build, binary, runs).split("\n")[:-1]
        have = lines[start:end]
        if want != have:
            bad += 1
            if mode == "--check":
                sys.stdout.writelines(difflib.unified_diff(
                    [l + "\n" for l in have], [l + "\n" for l in want],
                    "docs: " + heading, binary + " " + " ".join(runs[0])))
            lines[start:end] = want
    if mode == "--write":
        with open(DOC, "w") as f:
            f.write("\n".join(lines))
        return 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
