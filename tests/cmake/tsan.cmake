# ThreadSanitizer build (-DANOMALYD_TSAN=ON, scripts/test.sh's build/tsan):
# the tests that run the daemon's threads (capture, inspection, writer and
# the main thread's signals and SIGHUP reloads) get the label tsan. Build
# their programs with the target tsan_programs, run them with ctest -L tsan.
#
# Every program writes its reports to tsan-reports/report.PID; the test
# tsan_reports (a fixture cleanup, so it runs after the others) prints them
# and fails if there is any. Suppressions, each explained:
# tests/tsan/suppressions.txt.
#
# OMP_THREAD_LIMIT=1: libgomp is not built with TSan, so TSan cannot see the
# barriers of an OpenMP team and reports its workers' hand-offs as races
# (without the limit: some 50 reports per daemon run, in groupnorm and the
# Winograd convolution, between a team worker and the thread that started
# the team). With one thread per team the kernels run on the calling thread
# (the inspection thread, or the main thread opening a detector on reload),
# where every access between the daemon's own threads is still checked:
# with nn_threads back to a plain int, test_daemon's reload reports the race
# between ad_nn_set_threads (main) and ad_nn_get_threads (inspection).
if(ANOMALYD_TSAN)
  set(tsan_tests test_daemon test_daemon_faults test_daemon_notify test_calib_cli
      test_walkthrough test_modbus_link test_mqtt_link test_mqtt_daemon)
  set(tsan_dir ${CMAKE_BINARY_DIR}/tsan-reports)
  set(tsan_options "log_path=${tsan_dir}/report:second_deadlock_stack=1")
  string(APPEND tsan_options ":suppressions=${CMAKE_SOURCE_DIR}/tests/tsan/suppressions.txt")

  add_test(NAME tsan_reports_clear
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/tsan/reports.sh clear ${tsan_dir})
  add_test(NAME tsan_reports
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/tsan/reports.sh check ${tsan_dir})
  set_tests_properties(tsan_reports_clear PROPERTIES LABELS tsan FIXTURES_SETUP tsan)
  set_tests_properties(tsan_reports PROPERTIES LABELS tsan FIXTURES_CLEANUP tsan)

  # fault_preload (test_daemon_faults) wraps libc calls inside the daemon,
  # and TSan's start-up already makes some (mkdir for log_path) before the
  # runtime can track an instrumented caller: the wrapper is left
  # uninstrumented. It only forwards to the next definition, TSan's own
  # interceptor, so the daemon's calls are still seen.
  target_compile_options(fault_preload PRIVATE -fno-sanitize=thread)
  set(tsan_programs anomalyd anomalyctl fault_preload)
  if(TARGET gen_fixtures)
    list(APPEND tsan_programs gen_fixtures)
  endif()
  foreach(t ${tsan_tests})
    if(TARGET ${t})
      list(APPEND tsan_programs ${t})
      set_property(TEST ${t} APPEND PROPERTY LABELS tsan)
      set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
                   "TSAN_OPTIONS=${tsan_options}" "OMP_THREAD_LIMIT=1")
      set_tests_properties(${t} PROPERTIES FIXTURES_REQUIRED tsan)
    endif()
  endforeach()
  add_custom_target(tsan_programs DEPENDS ${tsan_programs})
endif()
