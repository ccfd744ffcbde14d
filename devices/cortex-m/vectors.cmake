# amp_vector_tables(OUT [CORRUPT GROUP]): write OUT, the C tables of the
# spec's golden vectors (spec/vectors), at build time with gen_vectors.py.
# CORRUPT flips one expected byte of GROUP, for an image that must fail.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(AMP_VECTORS_GENERATOR ${CMAKE_CURRENT_LIST_DIR}/gen_vectors.py)
get_filename_component(AMP_VECTORS_DIR ${CMAKE_CURRENT_LIST_DIR}/../../spec/vectors ABSOLUTE)

function(amp_vector_tables out)
  cmake_parse_arguments(ARG "" "CORRUPT" "" ${ARGN})
  set(args)
  if(ARG_CORRUPT)
    set(args --corrupt ${ARG_CORRUPT})
  endif()
  file(GLOB json ${AMP_VECTORS_DIR}/*.json)
  add_custom_command(OUTPUT ${out}
    COMMAND ${Python3_EXECUTABLE} ${AMP_VECTORS_GENERATOR} ${AMP_VECTORS_DIR} ${out} ${args}
    DEPENDS ${AMP_VECTORS_GENERATOR} ${json}
    COMMENT "C tables of spec/vectors ${args}")
endfunction()
