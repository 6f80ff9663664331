# fuzz_mux: arbitrary bytes into a mux (fuzz_mux.c). Included from
# common/fuzz/CMakeLists.txt. The mux sources are compiled into the targets
# themselves, so that libFuzzer instruments them for coverage and the targets
# need wr_base alone.
#   fuzz_mux_replay  always built; ctest replays corpus/mux (label fuzz).
#   fuzz_mux         libFuzzer binary, with -DWARREN_FUZZ=ON and CC=clang:
#                    fuzz_mux -max_len=4096 common/fuzz/corpus/mux
# Seeds: the hand_* files, and the wire captures of test_mux, rewritten with
#   WR_MUX_CORPUS_OUT=common/fuzz/corpus/mux test_mux
set(WR_FUZZ_MUX_SRCS
  ${CMAKE_CURRENT_LIST_DIR}/fuzz_mux.c
  ${CMAKE_CURRENT_LIST_DIR}/../src/wr_frame.c
  ${CMAKE_CURRENT_LIST_DIR}/../src/wr_mux.c)

add_executable(fuzz_mux_replay ${WR_FUZZ_MUX_SRCS} ${CMAKE_CURRENT_LIST_DIR}/replay.c)
target_include_directories(fuzz_mux_replay PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src)
target_link_libraries(fuzz_mux_replay PRIVATE wr_base)
add_test(NAME fuzz_mux_replay COMMAND fuzz_mux_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/mux)
set_tests_properties(fuzz_mux_replay PROPERTIES TIMEOUT 120 LABELS fuzz)

if(WARREN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WARREN_FUZZ=ON needs clang (CC=clang)")
  endif()
  add_executable(fuzz_mux ${WR_FUZZ_MUX_SRCS})
  target_include_directories(fuzz_mux PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../src)
  # WARREN_SANITIZE already adds address,undefined to everything.
  if(WARREN_SANITIZE)
    set(WR_FUZZ_MUX_SAN -fsanitize=fuzzer)
  else()
    set(WR_FUZZ_MUX_SAN -fsanitize=fuzzer,address,undefined)
  endif()
  target_compile_options(fuzz_mux PRIVATE ${WR_FUZZ_MUX_SAN})
  target_link_options(fuzz_mux PRIVATE ${WR_FUZZ_MUX_SAN})
  target_link_libraries(fuzz_mux PRIVATE wr_base)
endif()
