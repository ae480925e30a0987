# Fault-injection tests of the real anomalyd binary (test_daemon_faults):
# daemon_harness drives the daemon (shared with test_daemon); fault_preload is
# an LD_PRELOAD library that makes writes under a path prefix fail like a
# full or read-only disk while a control file exists.
add_library(daemon_harness STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/daemon_harness.c)
target_link_libraries(daemon_harness PUBLIC test_support PkgConfig::SQLITE)

add_library(fault_preload MODULE ${CMAKE_CURRENT_SOURCE_DIR}/support/fault_preload.c)
set_target_properties(fault_preload PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
target_link_libraries(fault_preload PRIVATE ${CMAKE_DL_LIBS})

if(TARGET test_daemon)
  target_link_libraries(test_daemon PRIVATE daemon_harness)
endif()
if(TARGET test_daemon_faults)
  target_link_libraries(test_daemon_faults PRIVATE daemon_harness)
  target_compile_definitions(test_daemon_faults PRIVATE
    FAULT_PRELOAD="$<TARGET_FILE:fault_preload>")
  add_dependencies(test_daemon_faults anomalyd fault_preload)
  set_tests_properties(test_daemon_faults PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 900)
endif()
