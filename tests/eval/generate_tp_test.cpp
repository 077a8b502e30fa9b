// Generation runs on one rank: a model split over a tensor-parallel group refuses to make a KV
// cache, with a user error that says so (run under mpiexec with 2 ranks).
#include <string>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "model/model_test_util.h"
#include "model/transformer.h"
#include "mpi_test_env.h"

namespace tailor::model {
namespace {

TEST(GenerateTensorParallel, IsRefusedWithAClearError) {
  comm::Communicator& tp = tailor::testing::world();
  ASSERT_GT(tp.size(), 1);
  backend::CpuOps ops(1);
  ModelSpec spec = testing::tiny_llama();
  Transformer m(spec, ops, DType::kF32, &tp);
  try {
    (void)m.make_kv_cache(1, 8);
    ADD_FAILURE() << "a tensor-parallel model made a KV cache";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor-parallel generation is not supported"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tailor::model
