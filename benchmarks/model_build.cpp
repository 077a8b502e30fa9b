// Building a model (parameters, layers, adapters index) against its depth: the time per layer
// must stay flat (issue 27, item 7: building was quadratic in num_layers, 20,000 layers took over
// ten minutes). Prints a table and one JSON line.
//   build/benchmarks/tailor_bench_model_build [--layers 1000,4000,16000]
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_ops.h"
#include "model/transformer.h"

int main(int argc, char** argv) {
  CLI::App app{"time to build a tiny model of many layers"};
  std::vector<int> depths = {1000, 4000, 16000};
  app.add_option("--layers", depths, "depths to build")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  tailor::backend::CpuOps ops(1);
  nlohmann::json out = nlohmann::json::array();
  std::printf("%10s %12s %16s\n", "layers", "build s", "us per layer");
  for (int layers : depths) {
    tailor::model::ModelSpec s;
    s.vocab_size = 11;
    s.vocab_multiple = 8;
    s.hidden_size = 8;
    s.num_layers = layers;
    s.num_heads = 4;
    s.num_kv_heads = 2;
    s.head_dim = 4;
    s.intermediate_size = 12;
    s.max_position_embeddings = 16;
    const auto t0 = std::chrono::steady_clock::now();
    { tailor::model::Transformer m(s, ops, tailor::DType::kF32); }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%10d %12.3f %16.2f\n", layers, sec, 1e6 * sec / layers);
    out.push_back({{"layers", layers}, {"seconds", sec}, {"us_per_layer", 1e6 * sec / layers}});
  }
  std::printf("%s\n", nlohmann::json{{"benchmark", "model_build"}, {"results", out}}.dump().c_str());
  return 0;
}
