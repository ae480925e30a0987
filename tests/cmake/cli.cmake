# anomalyctl init runs the real binary.
set_tests_properties(test_init PROPERTIES LABELS "integration")
set_tests_properties(test_walkthrough PROPERTIES LABELS "integration" RUN_SERIAL TRUE)
# test_cli runs every anomalyctl command for the argument convention.
if(TARGET test_cli)
  add_dependencies(test_cli anomalyctl)
  set_tests_properties(test_cli PROPERTIES LABELS "integration")
endif()
# test_synth_cli runs anomalyctl synth --dataset and scores the result with eval.
if(TARGET test_synth_cli)
  add_dependencies(test_synth_cli anomalyctl)
  set_tests_properties(test_synth_cli PROPERTIES LABELS "integration")
endif()
