# bench/report.sh: report_log builds a large reject log with the daemon's
# store code for `anomalyctl report` to be timed on.
add_executable(report_log ${CMAKE_CURRENT_SOURCE_DIR}/report_log.c)
target_link_libraries(report_log PRIVATE anomalyd_core)
