# Capture tests. test_v4l2 plays a simulated camera: the libv4l2 entry points
# and poll are wrapped at link time, so the V4L2 source's calls land in the test.
if(TARGET test_v4l2)
  target_link_options(test_v4l2 PRIVATE
    -Wl,--wrap=v4l2_open -Wl,--wrap=v4l2_close -Wl,--wrap=v4l2_ioctl
    -Wl,--wrap=v4l2_mmap -Wl,--wrap=v4l2_munmap -Wl,--wrap=poll)
  set_tests_properties(test_v4l2 PROPERTIES LABELS "unit;capture")
endif()
if(TARGET test_capture)
  set_tests_properties(test_capture PROPERTIES LABELS "unit;capture")
endif()
