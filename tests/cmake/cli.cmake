# anomalyctl init runs the real binary.
set_tests_properties(test_init PROPERTIES LABELS "integration")
