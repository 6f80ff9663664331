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
