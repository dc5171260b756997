# gen_docs.cmake - run by the build (CMakeLists.txt): writes the man page and the bash and
# zsh completions that `duroxlua help` generates from the commands' help texts.
#   cmake -DDUROXLUA=build/duroxlua -DMAN=... -DBASH=... -DZSH=... -P scripts/gen_docs.cmake
foreach(item "--man;${MAN}" "--completion;bash;${BASH}" "--completion;zsh;${ZSH}")
  list(GET item -1 out)
  list(REMOVE_AT item -1)
  get_filename_component(dir "${out}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  # a sanitizer build's duroxlua runs here too; leaks are the tests' business
  execute_process(COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0 ${DUROXLUA} help ${item}
                  OUTPUT_FILE "${out}" RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "duroxlua help ${item} failed (${rc}): ${err}")
  endif()
endforeach()
