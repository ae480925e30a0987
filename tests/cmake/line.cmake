# test_line: the station I/O core (src/line/) with real small programs as
# the command output; it includes src/line/line.h.
if(TARGET test_line)
  target_include_directories(test_line PRIVATE ${CMAKE_SOURCE_DIR}/src)
endif()
# test_line_replay: the real anomalyctl (capture --empty) and anomalyd
# (trigger.mode part, --no-drop) on every replay of fixtures/line, through
# tests/support/line_station.c (the station's reference, configs, truth).
add_library(line_station STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/line_station.c)
target_link_libraries(line_station PUBLIC daemon_harness)
if(TARGET test_line_replay)
  target_link_libraries(test_line_replay PRIVATE line_station)
  add_dependencies(test_line_replay anomalyd anomalyctl)
  set_tests_properties(test_line_replay PROPERTIES LABELS integration)
endif()
# test_line_e2e: the issue's "done when" with the real anomalyd, Debian's
# mosquitto broker (tests/support/mqtt_broker.c) and the libmodbus PLC
# stand-in (tests/support/plc_server.c), all on loopback.
if(TARGET test_line_e2e)
  target_link_libraries(test_line_e2e PRIVATE line_station mqtt_broker plc_server)
  add_dependencies(test_line_e2e anomalyd anomalyctl)
  set_tests_properties(test_line_e2e PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 900)
endif()
