# xgradBLAS.cmake -- locate OpenBLAS (BLAS + cblas.h) for xgrad.
#
# Used both by xgrad's own build and by the installed xgradConfig.cmake, so
# that consumers get the same BLAS setup.
#
#   xgrad_blas_default_vendor()
#       Sets BLA_VENDOR=OpenBLAS unless the user already chose a vendor
#       (cache/normal variable or environment). Call it *before*
#       find_package(BLAS) and before find_package(xtensor-blas), whose config
#       runs find_dependency(BLAS)/find_dependency(LAPACK) itself.
#
#   xgrad_add_cblas_target([HINTS dir...])
#       Requires BLAS::BLAS (find_package(BLAS) must have succeeded). Finds the
#       directory containing cblas.h and creates the INTERFACE IMPORTED target
#       xgrad_deps::cblas = BLAS::BLAS + that include directory.
#       Sets XGRAD_CBLAS_FOUND and XGRAD_CBLAS_INCLUDE_DIR.
#
# Debian/Ubuntu notes: libopenblas-dev puts cblas.h in
# /usr/include/<multiarch>/openblas-pthread/ and exposes it as
# /usr/include/<multiarch>/cblas.h through update-alternatives (which may also
# point at the netlib/ATLAS header if those are installed), so we prefer the
# directory reported by `pkg-config openblas`.

include_guard(GLOBAL)

macro(xgrad_blas_default_vendor)
  if(NOT DEFINED BLA_VENDOR AND NOT DEFINED ENV{BLA_VENDOR})
    set(BLA_VENDOR OpenBLAS)
  endif()
endmacro()

function(xgrad_add_cblas_target)
  cmake_parse_arguments(_xcb "" "" "HINTS" ${ARGN})
  set(XGRAD_CBLAS_FOUND FALSE PARENT_SCOPE)

  if(TARGET xgrad_deps::cblas)
    set(XGRAD_CBLAS_FOUND TRUE PARENT_SCOPE)
    return()
  endif()
  if(NOT TARGET BLAS::BLAS)
    message(STATUS "xgrad: BLAS::BLAS target not available; run find_package(BLAS) first")
    return()
  endif()

  set(_hints ${_xcb_HINTS})
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(_XGRAD_PC_OPENBLAS QUIET openblas)
    if(_XGRAD_PC_OPENBLAS_FOUND)
      list(APPEND _hints ${_XGRAD_PC_OPENBLAS_INCLUDE_DIRS} ${_XGRAD_PC_OPENBLAS_INCLUDEDIR})
    endif()
  endif()

  find_path(XGRAD_CBLAS_INCLUDE_DIR
    NAMES cblas.h
    HINTS ${_hints}
    PATH_SUFFIXES openblas openblas-pthread openblas-openmp openblas-serial
    DOC "Directory containing cblas.h (OpenBLAS)"
  )
  if(NOT XGRAD_CBLAS_INCLUDE_DIR)
    message(STATUS "xgrad: could not find cblas.h (install libopenblas-dev)")
    return()
  endif()

  add_library(xgrad_deps::cblas INTERFACE IMPORTED)
  set_target_properties(xgrad_deps::cblas PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${XGRAD_CBLAS_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES BLAS::BLAS
  )
  set(XGRAD_CBLAS_FOUND TRUE PARENT_SCOPE)
  set(XGRAD_CBLAS_INCLUDE_DIR "${XGRAD_CBLAS_INCLUDE_DIR}" PARENT_SCOPE)
endfunction()
