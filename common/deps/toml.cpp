// toml++'s implementation, compiled once into libedge instead of linked from
// libtomlplusplus.so (a shared C++ library: see deps/fmt.cpp). Everything else includes
// toml++ with TOML_HEADER_ONLY=0 (set for libedge's users); this is the one translation
// unit that defines TOML_IMPLEMENTATION.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
