# Every dependency is a Debian 12 package; scripts/install-deps installs them.
find_package(PkgConfig REQUIRED)
find_package(fmt REQUIRED)  # headers only: common/deps/fmt.cpp compiles the rest
find_package(CLI11 CONFIG REQUIRED)
find_package(doctest REQUIRED)
find_package(Threads REQUIRED)  # here, so every directory (tools, tests, fuzz targets) sees Threads::Threads
find_package(tomlplusplus REQUIRED)  # headers only: common/deps/toml.cpp compiles the rest
pkg_check_modules(PCAP REQUIRED IMPORTED_TARGET libpcap)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)

# BoringSSL from android-libboringssl-dev: no pkg-config, headers in /usr/include/android,
# libraries in /usr/lib/<multiarch>/android. Imported with an rpath so binaries find it.
set(EDGE_BORINGSSL_LIBDIR "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android")
find_library(BORINGSSL_CRYPTO NAMES crypto PATHS ${EDGE_BORINGSSL_LIBDIR} NO_DEFAULT_PATH REQUIRED)
find_library(BORINGSSL_SSL NAMES ssl PATHS ${EDGE_BORINGSSL_LIBDIR} NO_DEFAULT_PATH REQUIRED)
add_library(boringssl::crypto SHARED IMPORTED)
set_target_properties(boringssl::crypto PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_CRYPTO} IMPORTED_NO_SONAME OFF
  INTERFACE_INCLUDE_DIRECTORIES /usr/include/android)
add_library(boringssl::ssl SHARED IMPORTED)
set_target_properties(boringssl::ssl PROPERTIES
  IMPORTED_LOCATION ${BORINGSSL_SSL}
  INTERFACE_INCLUDE_DIRECTORIES /usr/include/android
  INTERFACE_LINK_LIBRARIES boringssl::crypto)
# Build and install trees get exactly this one entry: CMake's own build rpath added an empty
# entry (the current directory) that made every start search it for each library.
set(CMAKE_BUILD_WITH_INSTALL_RPATH ON)
set(CMAKE_INSTALL_RPATH ${EDGE_BORINGSSL_LIBDIR})

# The tools load no shared C++ library, so they link the C++ runtime statically: loading
# libstdc++.so (and libfmt, libtomlplusplus, libsimdjson before) took ~1 ms of every
# start, 5-6% of a `bgp-announce decode` of a capture. The C libraries stay shared.
# Sanitizer builds keep the shared runtime (the sanitizers' interceptors expect it).
set(EDGE_STATIC_RUNTIME "")
if(NOT EDGE_SANITIZE AND NOT EDGE_FUZZ)
  set(EDGE_STATIC_RUNTIME -static-libstdc++ -static-libgcc)
endif()
# zlib and bzip2 (bgp-announce's MRT input) from their static archives where installed.
find_library(EDGE_LIBZ NAMES libz.a z REQUIRED)
find_library(EDGE_LIBBZ2 NAMES libbz2.a bz2 REQUIRED)
