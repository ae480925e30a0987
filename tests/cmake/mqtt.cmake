# test_mqtt_link and test_mqtt_daemon: the MQTT link against Debian's
# mosquitto broker, which tests/support/mqtt_broker.c starts on a free
# loopback port (and a recording libmosquitto client); test_mqtt_daemon runs
# the real anomalyd. Both spawn brokers and wait on them: run alone.
add_library(mqtt_broker STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/mqtt_broker.c)
target_include_directories(mqtt_broker PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
target_link_libraries(mqtt_broker PUBLIC test_support PkgConfig::MOSQUITTO)
foreach(t test_mqtt_link test_mqtt_daemon)
  if(TARGET ${t})
    target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${t} PRIVATE mqtt_broker)
    set_tests_properties(${t} PROPERTIES RUN_SERIAL TRUE TIMEOUT 900)
  endif()
endforeach()
if(TARGET test_mqtt_daemon)
  target_link_libraries(test_mqtt_daemon PRIVATE daemon_harness)
  add_dependencies(test_mqtt_daemon anomalyd)
  set_tests_properties(test_mqtt_daemon PROPERTIES LABELS integration)
endif()
