# Calibration: the CLI test runs the real anomalyctl (score, eval, calibrate),
# anomalyd (reload on SIGHUP) and the fixture generator for extra good parts from other seeds.
if(TARGET test_calib_cli)
  add_dependencies(test_calib_cli anomalyctl anomalyd)
  if(TARGET gen_fixtures)
    add_dependencies(test_calib_cli gen_fixtures)
  endif()
  set_tests_properties(test_calib_cli PROPERTIES LABELS "integration" TIMEOUT 300)
endif()
