# Runs an example that must fail cleanly: a non-zero exit code (ctest's PASS_REGULAR_EXPRESSION would ignore
# the exit code, hence this script), EXPECT somewhere in its output, and no std::terminate ("terminate
# called"). Optionally:
#   SETUP        a command run first that must exit 0 (e.g. a short run that writes a checkpoint);
#   FORBID       text the failing run must not print (e.g. an output it did not write);
#   KEEP         a file the failing run must leave byte for byte as SETUP wrote it (the last checkpoint);
#   THEN         a command run afterwards that must exit 0 and print THEN_EXPECT (e.g. --resume from KEEP).
# Commands are lists separated by '|'; all run in WORKDIR (default: the current directory).
#   cmake "-DCOMMAND=prog|--lr|1e30" -DEXPECT="diverged" [-DSETUP=...] [-DKEEP=file] [-DTHEN=... -DTHEN_EXPECT=...]
#         [-DWORKDIR=dir] -P expect_failure.cmake
if(NOT DEFINED WORKDIR)
  set(WORKDIR "${CMAKE_CURRENT_BINARY_DIR}")
endif()

function(run_step label command_text)
  string(REPLACE "|" ";" command "${command_text}")
  execute_process(COMMAND ${command} WORKING_DIRECTORY "${WORKDIR}" TIMEOUT 300
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE errors)
  message("---- ${label}: ${command_text}\n---- exit: ${result}\n---- stdout:\n${output}\n---- stderr:\n${errors}")
  set(step_result "${result}" PARENT_SCOPE)
  set(step_output "${output}${errors}" PARENT_SCOPE)
endfunction()

if(DEFINED SETUP)
  run_step("setup" "${SETUP}")
  if(NOT step_result EQUAL 0)
    message(FATAL_ERROR "the setup run failed (exit ${step_result})")
  endif()
endif()
if(DEFINED KEEP)
  if(NOT EXISTS "${WORKDIR}/${KEEP}")
    message(FATAL_ERROR "the setup run did not write ${KEEP}")
  endif()
  file(SHA256 "${WORKDIR}/${KEEP}" keep_before)
endif()

run_step("failing run" "${COMMAND}")
if(NOT step_result MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the run did not end normally (${step_result})")
endif()
if(step_result EQUAL 0)
  message(FATAL_ERROR "the run exited with 0 although it had to fail")
endif()
string(FIND "${step_output}" "terminate called" position)
if(NOT position EQUAL -1)
  message(FATAL_ERROR "the run ended in std::terminate instead of reporting its error")
endif()
string(FIND "${step_output}" "${EXPECT}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "the output does not contain '${EXPECT}'")
endif()

if(DEFINED FORBID)
  string(FIND "${step_output}" "${FORBID}" position)
  if(NOT position EQUAL -1)
    message(FATAL_ERROR "the output contains '${FORBID}', which it must not")
  endif()
endif()

if(DEFINED KEEP)
  if(NOT EXISTS "${WORKDIR}/${KEEP}")
    message(FATAL_ERROR "the failing run deleted ${KEEP}")
  endif()
  file(SHA256 "${WORKDIR}/${KEEP}" keep_after)
  if(NOT keep_after STREQUAL keep_before)
    message(FATAL_ERROR "the failing run changed ${KEEP}")
  endif()
endif()

if(DEFINED THEN)
  run_step("then" "${THEN}")
  if(NOT step_result EQUAL 0)
    message(FATAL_ERROR "the run after the failure failed (exit ${step_result})")
  endif()
  string(FIND "${step_output}" "${THEN_EXPECT}" position)
  if(position EQUAL -1)
    message(FATAL_ERROR "the run after the failure does not print '${THEN_EXPECT}'")
  endif()
endif()
