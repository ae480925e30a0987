# test_modbus_link: the Modbus link against tests/support/plc_server.c, a
# libmodbus server on a free loopback port (the PLC stand-in, shared with
# bench/modbus_latency.c); its integration part runs the real anomalyd.
add_library(plc_server STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/plc_server.c)
target_include_directories(plc_server PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
target_link_libraries(plc_server PUBLIC anomalyd_core)
if(TARGET test_modbus_link)
  target_include_directories(test_modbus_link PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(test_modbus_link PRIVATE plc_server daemon_harness)
  add_dependencies(test_modbus_link anomalyd)
  set_tests_properties(test_modbus_link PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 900)
endif()
