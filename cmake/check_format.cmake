# Fails when any C++/CUDA source differs from what .clang-format produces.
# Fix with: clang-format -i $(git ls-files '*.h' '*.cpp' '*.cu' '*.cuh')
file(GLOB_RECURSE sources
  ${SOURCE_DIR}/include/*.h ${SOURCE_DIR}/src/*.h ${SOURCE_DIR}/src/*.cpp ${SOURCE_DIR}/src/*.cu
  ${SOURCE_DIR}/src/*.cuh ${SOURCE_DIR}/tools/*.cpp ${SOURCE_DIR}/tools/*.h
  ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/tests/*.h ${SOURCE_DIR}/bench/*.cpp
  ${SOURCE_DIR}/bench/*.cu ${SOURCE_DIR}/python/src/*.cpp ${SOURCE_DIR}/python/src/*.h)
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${sources}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format check failed:\n${err}\nRun: clang-format -i <files>")
endif()
list(LENGTH sources n)
message(STATUS "clang-format: ${n} files clean")
