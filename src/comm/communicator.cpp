#include "comm/communicator.h"

#include <cstring>

namespace tailor::comm {

double Communicator::all_reduce_sum(double v) {
  backend::Tensor t{&v, DType::kF64, Shape{1}, backend::Device::kCpu};
  all_reduce(t, ReduceOp::kSum);
  return v;
}

double Communicator::all_reduce_max(double v) {
  backend::Tensor t{&v, DType::kF64, Shape{1}, backend::Device::kCpu};
  all_reduce(t, ReduceOp::kMax);
  return v;
}

std::int64_t Communicator::all_reduce_sum(std::int64_t v) {
  // Exact for |v| < 2^53, which token and element counts are.
  return static_cast<std::int64_t>(all_reduce_sum(static_cast<double>(v)));
}

bool Communicator::any(bool v) { return all_reduce_max(v ? 1.0 : 0.0) > 0.0; }

namespace {

// out = in, both host tensors of one size (device tensors come through a StagedCommunicator).
void copy_host(const backend::Tensor& out, const backend::Tensor& in) {
  TAILOR_ASSERT(in.device == backend::Device::kCpu && out.device == backend::Device::kCpu,
                "a host communicator given {} and {}", in.str(), out.str());
  if (out.data != in.data && in.bytes() > 0) std::memmove(out.data, in.data, in.bytes());
}

}  // namespace

void SelfCommunicator::reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) {
  TAILOR_ASSERT(in.numel() == out.numel() && in.dtype == out.dtype, "reduce_scatter shapes");
  copy_host(out, in);
}

void SelfCommunicator::all_gather(const backend::Tensor& in, const backend::Tensor& out) {
  TAILOR_ASSERT(in.numel() == out.numel() && in.dtype == out.dtype, "all_gather shapes");
  copy_host(out, in);
}

std::unique_ptr<Communicator> SelfCommunicator::split(int, int) {
  return std::make_unique<SelfCommunicator>();
}

}  // namespace tailor::comm
