# The committed fixtures must be exactly what the generator makes.
if(TARGET gen_fixtures)
  add_test(NAME fixtures_reproducible
    COMMAND sh ${CMAKE_SOURCE_DIR}/tools/check-fixtures.sh $<TARGET_FILE:gen_fixtures>
            ${CMAKE_SOURCE_DIR}/fixtures)
  set_tests_properties(fixtures_reproducible PROPERTIES LABELS unit TIMEOUT 120)
endif()
