# test_util fails a folder's fsync on demand: fsync is wrapped at link time,
# so the calls in the library's durable write land in the test.
if(TARGET test_util)
  target_link_options(test_util PRIVATE -Wl,--wrap=fsync)
endif()
