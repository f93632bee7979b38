# cudasim_add_kernels(<target> <file.cu>...): builds CUDA kernel sources into <target> as
# C++ run by cudasim (tests/cudasim/cudasim_device.hpp, launch.cpp) instead of nvcc output.
# Each .cu is translated at build time (translate.cmake) into
# ${CMAKE_CURRENT_BINARY_DIR}/cudasim/<name>.cpp, compiled as C++17 with the kernel flags
# below, and <target> links rcc_cudasim. Needs CXX enabled in the top-level directory (a
# language enabled in a subdirectory is unknown to its siblings) and rcc_cudasim defined.
#
# Kernel flags, also used by cudasim's self-test (cudasim_kernel_options):
# -ffp-contract=off: nvcc keeps __fmul_rn and friends unfused and so must g++, whatever
#   -march; the kernels' host twins are compared to the bit.
# -Wall -Wextra: the top level warns for C only; kernels are held to the same standard
#   (-Wno-unused-parameter as for C), -Werror with RCC_WERROR.
set_property(GLOBAL PROPERTY CUDASIM_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(cudasim_kernel_options target)
  get_property(dir GLOBAL PROPERTY CUDASIM_DIR)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_include_directories(${target} PRIVATE ${dir}/include)
  target_link_libraries(${target} PUBLIC rcc_cudasim)
endfunction()

set(CUDASIM_KERNEL_FLAGS -ffp-contract=off -Wall -Wextra -Wno-unused-parameter
    $<$<BOOL:${RCC_WERROR}>:-Werror>)
set_property(GLOBAL PROPERTY CUDASIM_KERNEL_FLAGS "${CUDASIM_KERNEL_FLAGS}")

function(cudasim_add_kernels target)
  if(NOT CMAKE_CXX_COMPILER_LOADED)
    message(FATAL_ERROR "cudasim_add_kernels: enable CXX in the top-level project() "
                        "(CUDA kernels are compiled as C++ under RCC_CUDASIM)")
  endif()
  if(NOT TARGET rcc_cudasim)
    message(FATAL_ERROR "cudasim_add_kernels: add_subdirectory(tests/cudasim) first")
  endif()
  get_property(dir GLOBAL PROPERTY CUDASIM_DIR)
  get_property(flags GLOBAL PROPERTY CUDASIM_KERNEL_FLAGS)
  set(generated)
  set(names)
  foreach(cu IN LISTS ARGN)
    get_filename_component(cu_path "${cu}" ABSOLUTE)
    get_filename_component(name "${cu}" NAME_WE)
    if(name IN_LIST names)
      message(FATAL_ERROR "cudasim_add_kernels: two kernel sources named ${name}")
    endif()
    list(APPEND names ${name})
    set(out ${CMAKE_CURRENT_BINARY_DIR}/cudasim/${name}.cpp)
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DIN=${cu_path} -DOUT=${out} -P ${dir}/translate.cmake
      DEPENDS ${cu_path} ${dir}/translate.cmake
      COMMENT "cudasim: translating ${name}.cu"
      VERBATIM)
    list(APPEND generated ${out})
  endforeach()
  target_sources(${target} PRIVATE ${generated})
  # The kernels' own flags: per source, so that the target's C sources keep theirs.
  set_source_files_properties(${generated} PROPERTIES COMPILE_OPTIONS "${flags}")
  cudasim_kernel_options(${target})
endfunction()
