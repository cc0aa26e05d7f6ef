# Runs an MPI job that must fail: it has to end before TIMEOUT seconds (no rank left hanging), with a
# non-zero exit code, and print EXPECT (a rank's error message) somewhere in its output.
#   cmake "-DLAUNCH=mpiexec|-n|2|...|program|args" -DEXPECT="text" -DTIMEOUT=60 -P expect_job_abort.cmake
if(NOT DEFINED TIMEOUT)
  set(TIMEOUT 60)
endif()
string(REPLACE "|" ";" LAUNCH "${LAUNCH}")
execute_process(
  COMMAND ${LAUNCH}
  TIMEOUT ${TIMEOUT}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE errors)
message("---- exit: ${result}\n---- stdout:\n${output}\n---- stderr:\n${errors}")
if(NOT result MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the job did not end by itself within ${TIMEOUT} s (${result}): a rank hangs")
endif()
if(result EQUAL 0)
  message(FATAL_ERROR "the job exited with 0 although a rank failed")
endif()
string(FIND "${output}${errors}" "${EXPECT}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "the output does not contain the failing rank's message '${EXPECT}'")
endif()
string(FIND "${output}${errors}" "which it must not" position)
if(NOT position EQUAL -1)
  message(FATAL_ERROR "a rank went past the point where it had to wait for the failed rank")
endif()
