# Smoke test of warren-bench (included from tools/CMakeLists.txt): runs the
# quick round-trip and new-streams measurements on the direct and warren
# paths with the binaries of this build. It asserts only that the run
# completes and prints its figures, never a timing.
add_test(NAME bench.tunnel.smoke
         COMMAND warren-bench tunnel --quick --only rtt,streams --paths direct,warren
                 --node-bin $<TARGET_FILE:warren-node>
                 --agent-bin $<TARGET_FILE:warren-agent>
                 --ctl-bin $<TARGET_FILE:warrenctl>)
set_tests_properties(bench.tunnel.smoke PROPERTIES
                     TIMEOUT 60
                     LABELS bench
                     PASS_REGULAR_EXPRESSION "new streams +/s +[0-9]+ +[0-9]+")

# Smoke test of "warren-bench gossip": five warren-node members, one run, a
# 3 s idle window (about 20 s in all). It asserts only that the run completes
# and prints its table, never a timing.
add_test(NAME bench.gossip.smoke
         COMMAND warren-bench gossip --quick
                 --node-bin $<TARGET_FILE:warren-node>
                 --ctl-bin $<TARGET_FILE:warrenctl>)
set_tests_properties(bench.gossip.smoke PROPERTIES
                     TIMEOUT 60
                     LABELS bench
                     PASS_REGULAR_EXPRESSION "leave, ms: [^\n]*\n[^\n]*\n +5 +[0-9]+ ")

# Smoke test of "warren-bench pool" (needs haproxy, installed by tools/deps.sh
# test): N = 3, one run; asserts only that the table is printed.
add_test(NAME bench.pool.smoke
         COMMAND warren-bench pool --quick
                 --node-bin $<TARGET_FILE:warren-node>
                 --agent-bin $<TARGET_FILE:warren-agent>
                 --ctl-bin $<TARGET_FILE:warrenctl>)
set_tests_properties(bench.pool.smoke PROPERTIES
                     TIMEOUT 120
                     LABELS bench
                     PASS_REGULAR_EXPRESSION "3  random      targeted +[0-9]+ ")

# Smoke test of "warren-bench lb" (warren-lb's sni mode beside HAProxy's):
# --quick; asserts only that the table is printed.
add_test(NAME bench.lb.smoke
         COMMAND warren-bench lb --quick --lb-bin $<TARGET_FILE:warren-lb>)
set_tests_properties(bench.lb.smoke PROPERTIES
                     TIMEOUT 120
                     LABELS bench
                     PASS_REGULAR_EXPRESSION "new connections /s +[0-9]+ +[0-9]+")
