# Diffusion (schedule, sampler, training) tests. test_train_cli runs the
# anomalyctl binary, so it needs it built and is an integration test.
if(TARGET test_train_cli)
  add_dependencies(test_train_cli anomalyctl)
  set_tests_properties(test_train_cli PROPERTIES LABELS "integration" TIMEOUT 300)
endif()
