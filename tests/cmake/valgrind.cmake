# valgrind memcheck on the integration run (tests/valgrind/memcheck.sh),
# label memcheck. Only in a build without -march=native and without ASan:
# scripts/test.sh configures one (build/valgrind) and runs `ctest -L memcheck`.
if(NOT ANOMALYD_NATIVE AND NOT ANOMALYD_SANITIZE)
  find_program(VALGRIND_PROGRAM valgrind)
  if(VALGRIND_PROGRAM)
    add_test(NAME memcheck_integration
             COMMAND ${CMAKE_SOURCE_DIR}/tests/valgrind/memcheck.sh ${CMAKE_BINARY_DIR})
    set_tests_properties(memcheck_integration PROPERTIES LABELS memcheck TIMEOUT 1200)
  endif()
endif()
