#pragma once

#include "comm/communicator.h"

namespace tailor::testing {
// The MPI world of the test job (set by mpi_test_main.cpp).
extern comm::Communicator* g_world;
inline comm::Communicator& world() { return *g_world; }
}  // namespace tailor::testing
