# Decides whether the CUDA backend is built. AUTO builds it when nvcc is found, so that CUDA
# compile errors show on every machine that has the toolkit (CI included); running its tests
# needs a GPU (CTest label `gpu`).
set(QFORGE_HAVE_CUDA OFF)
if(NOT QFORGE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${QFORGE_CUDA_ARCHS})
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    # CMake 3.25 knows no CUDA20 dialect flag for nvcc (its module stops at c++17), so we
    # teach it the flag nvcc 12+ accepts rather than dropping our sources to C++17.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(QFORGE_HAVE_CUDA ON)
  elseif(QFORGE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "QFORGE_CUDA=ON but no CUDA compiler (nvcc) was found; install the CUDA "
                        "toolkit or configure with -DQFORGE_CUDA=OFF")
  endif()
endif()
message(STATUS "qforge: CUDA backend ${QFORGE_HAVE_CUDA} (QFORGE_CUDA=${QFORGE_CUDA})")
