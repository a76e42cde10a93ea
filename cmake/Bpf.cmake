# BPF objects -> bpftool skeletons, embedded in the binaries (no .o installed beside them).
#   edge_bpf_skeleton(NAME SOURCE) defines target bpf_<NAME>: an INTERFACE library whose
#   include directory holds <NAME>.skel.h.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(EDGE_BPF_INCLUDE ${CMAKE_SOURCE_DIR}/bpf/include)
set(EDGE_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${EDGE_BPF_OUT})

function(edge_bpf_skeleton name src)
  set(obj ${EDGE_BPF_OUT}/${name}.bpf.o)
  set(skel ${EDGE_BPF_OUT}/${name}.skel.h)
  file(GLOB bpf_headers ${EDGE_BPF_INCLUDE}/edge/*.h ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${EDGE_BPF_INCLUDE} -I${CMAKE_CURRENT_SOURCE_DIR}
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${bpf_headers}
    COMMENT "BPF ${src}" VERBATIM)
  add_custom_command(OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h" VERBATIM)
  add_custom_target(bpf_${name}_gen DEPENDS ${skel})
  add_library(bpf_${name} INTERFACE)
  add_dependencies(bpf_${name} bpf_${name}_gen)
  target_include_directories(bpf_${name} INTERFACE ${EDGE_BPF_OUT} ${EDGE_BPF_INCLUDE})
  target_link_libraries(bpf_${name} INTERFACE PkgConfig::LIBBPF)
endfunction()
