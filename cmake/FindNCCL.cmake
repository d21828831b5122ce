# Finds NCCL: the system's (libnccl-dev) or the one in the PyPI wheel nvidia-nccl-cu13 (headers and
# libnccl.so.2 under site-packages/nvidia/nccl, the same package the GPU machine's torch venv has).
# Defines NCCL_FOUND, NCCL_INCLUDE_DIR, NCCL_LIBRARY and the imported target NCCL::nccl.
find_package(Python3 COMPONENTS Interpreter QUIET)
set(_nccl_hints "")
if(Python3_Interpreter_FOUND)
  # nvidia.nccl is a namespace package: it has __path__, not __file__.
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c "import nvidia.nccl as n; print(list(n.__path__)[0])"
    OUTPUT_VARIABLE _nccl_wheel_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _nccl_rc)
  if(_nccl_rc EQUAL 0 AND _nccl_wheel_dir)
    list(APPEND _nccl_hints ${_nccl_wheel_dir})
  endif()
endif()

find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints} ENV NCCL_ROOT PATH_SUFFIXES include)
# The wheel ships only the versioned libnccl.so.2 (no libnccl.so link), so name it too; NAMES_PER_DIR
# keeps the library beside the header that was found (the wheel before a system copy).
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${_nccl_hints} ENV NCCL_ROOT PATH_SUFFIXES lib lib64)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NCCL REQUIRED_VARS NCCL_LIBRARY NCCL_INCLUDE_DIR)

if(NCCL_FOUND AND NOT TARGET NCCL::nccl)
  add_library(NCCL::nccl UNKNOWN IMPORTED)
  set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                                              INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
endif()
mark_as_advanced(NCCL_INCLUDE_DIR NCCL_LIBRARY)
