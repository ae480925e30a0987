# Capture tests. test_v4l2 plays a simulated camera: the libv4l2 entry points
# and poll are wrapped at link time, so the V4L2 source's calls land in the test.
if(TARGET test_v4l2)
  target_link_options(test_v4l2 PRIVATE
    -Wl,--wrap=v4l2_open -Wl,--wrap=v4l2_close -Wl,--wrap=v4l2_ioctl
    -Wl,--wrap=v4l2_mmap -Wl,--wrap=v4l2_munmap -Wl,--wrap=poll)
  # anomalyctl init --device runs on the simulated camera too
  target_include_directories(test_v4l2 PRIVATE ${CMAKE_SOURCE_DIR}/src/cli)
  set_tests_properties(test_v4l2 PROPERTIES LABELS "unit;capture")
endif()
if(TARGET test_capture)
  set_tests_properties(test_capture PROPERTIES LABELS "unit;capture")
endif()

# ---- Real-driver test (tests/vm/): the kernel's vivid driver under qemu ----
# qemu's TCG CPU lacks AVX-512, so the programs that run in the VM are built
# again without -march=native (and without sanitizers) into vm-bin/. They are
# not part of `all`: tests/vm/run-vm-test.sh builds them when it runs, after
# checking that this host can boot the VM at all.
if(NOT ANOMALYD_SANITIZE)
  function(anomalyd_vm_portable target)
    get_target_property(opts ${target} COMPILE_OPTIONS)
    if(opts)
      list(FILTER opts EXCLUDE REGEX "^-march=")
      # Warnings are enforced by the main build; here they must not stop the
      # test (e.g. -Wpsabi about wide vector types without -march=native).
      list(APPEND opts -Wno-error -Wno-psabi)
      set_target_properties(${target} PROPERTIES COMPILE_OPTIONS "${opts}")
    endif()
  endfunction()

  add_library(anomalyd_core_vm STATIC EXCLUDE_FROM_ALL ${CORE_SOURCES})
  target_include_directories(anomalyd_core_vm PUBLIC ${CMAKE_SOURCE_DIR}/include
                             PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(anomalyd_core_vm PUBLIC ANOMALYD_VERSION="${PROJECT_VERSION}")
  # the same libraries as anomalyd_core, whatever it gains (libmodbus, libmosquitto ...)
  get_target_property(core_libs anomalyd_core LINK_LIBRARIES)
  target_link_libraries(anomalyd_core_vm PUBLIC ${core_libs})
  anomalyd_vm_portable(anomalyd_core_vm)

  set(vm_bin ${CMAKE_BINARY_DIR}/vm-bin)
  add_executable(vm_capture_probe EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/tests/vm/vm_capture_probe.c)
  add_executable(anomalyd_vm EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/src/daemon/anomalyd_main.c)
  add_executable(anomalyctl_vm EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/src/cli/anomalyctl_main.c)
  set_target_properties(anomalyd_vm PROPERTIES OUTPUT_NAME anomalyd)
  set_target_properties(anomalyctl_vm PROPERTIES OUTPUT_NAME anomalyctl)
  target_include_directories(anomalyctl_vm PRIVATE ${CMAKE_SOURCE_DIR}/src/cli)
  foreach(t vm_capture_probe anomalyd_vm anomalyctl_vm)
    target_link_libraries(${t} PRIVATE anomalyd_core_vm)
    set_target_properties(${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${vm_bin})
    anomalyd_vm_portable(${t})
  endforeach()
  add_custom_target(vm_programs DEPENDS vm_capture_probe anomalyd_vm anomalyctl_vm)

  add_test(NAME vm_vivid
    COMMAND ${CMAKE_SOURCE_DIR}/tests/vm/run-vm-test.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(vm_vivid PROPERTIES LABELS vm SKIP_RETURN_CODE 77 TIMEOUT 900
    RUN_SERIAL TRUE)
endif()
