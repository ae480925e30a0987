# bench/latency.sh's driver: trigger (Modbus edge, MQTT message) -> reject
# coil latency of the real anomalyd against the tests' PLC stand-in (a
# libmodbus server) and mosquitto broker (tests/support/), so it is built
# with the tests.
if(ANOMALYD_TESTS AND NOT ANOMALYD_FUZZ AND EXISTS ${CMAKE_SOURCE_DIR}/tests/support/mqtt_broker.c)
  add_executable(line_latency line_latency.c)
  target_link_libraries(line_latency PRIVATE plc_server mqtt_broker)
endif()
