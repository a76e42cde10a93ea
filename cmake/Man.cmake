# scdoc sources in man/ -> man pages in the build tree.
find_program(SCDOC scdoc REQUIRED)
function(edge_man_pages)
  set(outs)
  foreach(src ${ARGN})
    get_filename_component(base ${src} NAME_WE)   # e.g. maglev-calc.1
    string(REGEX REPLACE "\\.scd$" "" page ${src})
    get_filename_component(page ${page} NAME)
    set(out ${CMAKE_BINARY_DIR}/man/${page})
    add_custom_command(OUTPUT ${out}
      COMMAND sh -c "${SCDOC} < ${CMAKE_CURRENT_SOURCE_DIR}/${src} > ${out}.tmp && mv ${out}.tmp ${out}"
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src}
      COMMENT "man ${page}" VERBATIM)
    list(APPEND outs ${out})
  endforeach()
  add_custom_target(man ALL DEPENDS ${outs})
endfunction()
