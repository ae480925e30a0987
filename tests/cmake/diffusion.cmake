# Diffusion (schedule, sampler, training) tests. test_train_cli runs the
# anomalyctl binary, so it needs it built and is an integration test.
if(TARGET test_train_cli)
  add_dependencies(test_train_cli anomalyctl)
  set_tests_properties(test_train_cli PROPERTIES LABELS "integration" TIMEOUT 300)
endif()
# Counts malloc-family calls around ad_sampler_reconstruct.
if(TARGET test_diffusion_alloc)
  target_link_options(test_diffusion_alloc PRIVATE
    -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
    -Wl,--wrap=aligned_alloc -Wl,--wrap=posix_memalign)
endif()
