# fuzz_proxy: arbitrary bytes into the PROXY protocol parser (fuzz_proxy.c).
# Included from common/fuzz/CMakeLists.txt. The parser is compiled into the
# targets themselves so that libFuzzer instruments it.
#   fuzz_proxy_replay  always built; ctest replays corpus/proxy (label fuzz).
#   fuzz_proxy         libFuzzer binary, with -DWARREN_FUZZ=ON and CC=clang:
#                      fuzz_proxy -dict=common/fuzz/fuzz_proxy.dict -max_len=1024 \
#                          common/fuzz/corpus/proxy
set(WR_FUZZ_PROXY_SRCS
  ${CMAKE_CURRENT_LIST_DIR}/fuzz_proxy.c
  ${CMAKE_CURRENT_LIST_DIR}/../src/wr_proxy.c)

add_executable(fuzz_proxy_replay ${WR_FUZZ_PROXY_SRCS} ${CMAKE_CURRENT_LIST_DIR}/replay.c)
target_link_libraries(fuzz_proxy_replay PRIVATE wr_base)
add_test(NAME fuzz_proxy_replay COMMAND fuzz_proxy_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/proxy)
set_tests_properties(fuzz_proxy_replay PROPERTIES TIMEOUT 120 LABELS fuzz)

if(WARREN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WARREN_FUZZ=ON needs clang (CC=clang)")
  endif()
  add_executable(fuzz_proxy ${WR_FUZZ_PROXY_SRCS})
  # WARREN_SANITIZE already adds address,undefined to everything.
  if(WARREN_SANITIZE)
    set(WR_FUZZ_PROXY_SAN -fsanitize=fuzzer)
  else()
    set(WR_FUZZ_PROXY_SAN -fsanitize=fuzzer,address,undefined)
  endif()
  target_compile_options(fuzz_proxy PRIVATE ${WR_FUZZ_PROXY_SAN})
  target_link_options(fuzz_proxy PRIVATE ${WR_FUZZ_PROXY_SAN})
  target_link_libraries(fuzz_proxy PRIVATE wr_base)
endif()
