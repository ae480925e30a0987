# anomalyctl init runs the real binary.
set_tests_properties(test_init PROPERTIES LABELS "integration")
set_tests_properties(test_walkthrough PROPERTIES LABELS "integration" RUN_SERIAL TRUE)
