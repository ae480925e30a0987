# A short soak in CI: bench/soak.sh runs the real daemon on the
# replay source at 30 fps for 40 s and, with CHECK=1, fails when open
# descriptors or threads grow, resident memory grows by 4 MiB or more after
# the first sample, a reject has no row, or the daemon does not stop cleanly.
# Not in the sanitizer build: ASan's quarantine grows memory by design.
# The hour-long version is `INTERVAL=60 CHECK=1 bench/soak.sh 3600`.
if(NOT ANOMALYD_SANITIZE)
  add_test(NAME soak_short
           COMMAND env BUILD=${CMAKE_BINARY_DIR} CHECK=1 INTERVAL=10
                   ${CMAKE_SOURCE_DIR}/bench/soak.sh 40)
  set_tests_properties(soak_short PROPERTIES LABELS "soak;integration" RUN_SERIAL TRUE TIMEOUT 180)
endif()
