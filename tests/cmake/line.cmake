# test_line: the station I/O core (src/line/) with real small programs as
# the command output; it includes src/line/line.h.
if(TARGET test_line)
  target_include_directories(test_line PRIVATE ${CMAKE_SOURCE_DIR}/src)
endif()
