# The report: test_report checks the HTML/SVG writers and the log reader;
# test_report_cli runs the demo (scripts/demo.sh with the programs built
# here), checks its report and renders it in headless Chromium, writing the
# screenshot docs/report-demo.png is copied from. It skips (with its reason)
# only where Chromium cannot run.
if(TARGET test_report_cli)
  add_dependencies(test_report_cli anomalyctl anomalyd)
  set_tests_properties(test_report_cli PROPERTIES LABELS "integration" RUN_SERIAL TRUE
    TIMEOUT 300 SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endif()
