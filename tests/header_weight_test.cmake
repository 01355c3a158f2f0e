# Checks that the public headers stay light: a translation unit including the umbrella
# header preprocesses to at most 1.10 times one that includes the standard headers below,
# and no public header includes prometheus-cpp, spdlog, curl, sqlite or nlohmann/json.
# Run as: cmake -DCXX=<compiler> -DINCLUDE=<include dir> -DOUT=<dir> -P header_weight_test.cmake
set(std_headers string map memory vector chrono functional optional variant)
set(baseline "")
foreach(h ${std_headers})
  string(APPEND baseline "#include <${h}>\n")
endforeach()
file(WRITE ${OUT}/weight_baseline.cpp "${baseline}")
file(WRITE ${OUT}/weight_umbrella.cpp "#include <ccproxy/observability.hpp>\n")

foreach(which baseline umbrella)
  execute_process(COMMAND ${CXX} -std=c++17 -E -I${INCLUDE} ${OUT}/weight_${which}.cpp
                  OUTPUT_VARIABLE text RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "preprocessing weight_${which}.cpp failed")
  endif()
  string(LENGTH "${text}" size_${which})
endforeach()

math(EXPR limit "${size_baseline} * 110 / 100")
message(STATUS "umbrella: ${size_umbrella} bytes, standard headers: ${size_baseline} bytes")
if(size_umbrella GREATER limit)
  message(FATAL_ERROR "the umbrella header preprocesses to ${size_umbrella} bytes, "
                      "more than 1.10 x ${size_baseline}")
endif()

file(GLOB_RECURSE public_headers ${INCLUDE}/*.hpp)
foreach(header ${public_headers})
  file(STRINGS ${header} bad REGEX "#include *[<\"](prometheus/|spdlog/|curl/|sqlite3|nlohmann/)")
  if(bad)
    message(FATAL_ERROR "${header} includes a dependency: ${bad}")
  endif()
endforeach()
