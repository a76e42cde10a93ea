// Main for BPF tests: they load real programs, so they need root (see privileged.hpp).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "../support/privileged.hpp"
#include "bpf/prog.hpp"

int main(int argc, char** argv) {
    if (int rc = edge::test::require(edge::bpf::unavailable_reason(), argv[0])) return rc;
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
