# cmake -P script driving the packaging.find_package_consumer test.
#
# Required -D variables:
#   XGRAD_BUILD_DIR      xgrad build tree to install
#   CONSUMER_SOURCE_DIR  tests/consumer
#   WORK_DIR             scratch dir (wiped on every run)
# Optional:
#   CONFIG               build configuration (multi-config generators / build type)
#   GENERATOR            generator for the consumer project
#   CXX_COMPILER         C++ compiler for the consumer project

cmake_minimum_required(VERSION 3.18)

foreach(_v XGRAD_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake: -D${_v}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

set(_prefix "${WORK_DIR}/prefix")
set(_build  "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(_run step)
  message(STATUS "[consumer] ${step}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[consumer] ${step} failed (exit code ${_rc})")
  endif()
endfunction()

# 1. install the xgrad build tree into a private prefix
_run(install "${CMAKE_COMMAND}" --install "${XGRAD_BUILD_DIR}" --prefix "${_prefix}" --config "${CONFIG}")

# 2. configure + build the consumer project against it
set(_cfg_args -S "${CONSUMER_SOURCE_DIR}" -B "${_build}"
              "-DCMAKE_PREFIX_PATH=${_prefix}"
              "-DCMAKE_BUILD_TYPE=${CONFIG}"
              "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF")
if(GENERATOR)
  list(APPEND _cfg_args -G "${GENERATOR}")
endif()
if(CXX_COMPILER)
  list(APPEND _cfg_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
_run(configure "${CMAKE_COMMAND}" ${_cfg_args})
_run(build "${CMAKE_COMMAND}" --build "${_build}" --config "${CONFIG}")

# 3. run the consumer binary
set(_exe "")
foreach(_cand "${_build}/xgrad_consumer" "${_build}/${CONFIG}/xgrad_consumer"
              "${_build}/xgrad_consumer.exe" "${_build}/${CONFIG}/xgrad_consumer.exe")
  if(EXISTS "${_cand}")
    set(_exe "${_cand}")
    break()
  endif()
endforeach()
if(NOT _exe)
  message(FATAL_ERROR "[consumer] built executable xgrad_consumer not found under ${_build}")
endif()

execute_process(COMMAND "${_exe}"
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
message(STATUS "[consumer] output: ${_out}${_err}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "[consumer] xgrad_consumer exited with ${_rc}")
endif()
if(NOT _out MATCHES "consumer ok")
  message(FATAL_ERROR "[consumer] xgrad_consumer did not print 'consumer ok'")
endif()
message(STATUS "[consumer] passed")
