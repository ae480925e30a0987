# Detector module: score and eval run the real anomalyctl binary.
foreach(t test_score test_eval test_detect_stats)
  if(TARGET ${t})
    add_dependencies(${t} anomalyctl)
    set_tests_properties(${t} PROPERTIES LABELS "integration" TIMEOUT 300)
  endif()
endforeach()
# test_detect_stats also runs anomalyd --check-config.
if(TARGET test_detect_stats)
  add_dependencies(test_detect_stats anomalyd)
endif()
if(TARGET test_detect_model)
  set_tests_properties(test_detect_model PROPERTIES LABELS "integration" TIMEOUT 300)
endif()
