# test_unet counts heap allocations made by the library during forward and
# backward (they must make none): wrap the allocator for that program only.
if(TARGET test_unet)
  target_link_options(test_unet PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc
    -Wl,--wrap=realloc -Wl,--wrap=posix_memalign -Wl,--wrap=aligned_alloc)
  target_compile_definitions(test_unet PRIVATE NN_COUNT_ALLOCS=1)
endif()
