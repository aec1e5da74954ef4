# lib_separation.cmake — a ctest (cmake -DNM=... -DLIB=... -P): libgmm holds the model, EM, the backends and
# the data and model I/O only. It fails when the library defines one of the program's writers (report.md,
# labels/loglik/selection CSV, the gnuplot plots: src/app/) or calls anything that starts a process (the
# program forks gnuplot; the library never does).
if(NOT NM OR NOT LIB)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIB=<libgmm.a> -P lib_separation.cmake")
endif()
execute_process(COMMAND ${NM} -A ${LIB} OUTPUT_VARIABLE syms RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR syms STREQUAL "")
  message(FATAL_ERROR "${NM} -A ${LIB} failed (${rc}): ${err}")
endif()
string(REGEX MATCHALL "[^\n]* [TD] gmm_(plot_[a-z_]+|write_report|write_labels|write_loglik|write_selection|gnuplot_available)\n"
       app_defs "${syms}")
string(REGEX MATCHALL "[^\n]* U (fork|vfork|execv|execvp|execve|execl|execlp|posix_spawn|posix_spawnp|popen|system)\n"
       spawns "${syms}")
if(app_defs OR spawns)
  string(JOIN "" found ${app_defs} ${spawns})
  message(FATAL_ERROR "libgmm holds program parts:\n${found}")
endif()
message(STATUS "libgmm (${LIB}): no report or plot writer, no process started")
