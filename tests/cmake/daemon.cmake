# test_daemon runs the real anomalyd binary (replay source, fixture model):
# integration label, needs the program built first, runs alone (it spawns
# daemons with their own threads and times frames at 30 fps).
if(TARGET test_daemon)
  add_dependencies(test_daemon anomalyd)
  set_tests_properties(test_daemon PROPERTIES LABELS integration RUN_SERIAL TRUE TIMEOUT 900)
endif()
