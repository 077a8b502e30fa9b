#include "comm/staged_communicator.h"

#include <utility>

namespace tailor::comm {
namespace {

// A host tensor standing for `t`: t itself on the host, else a host copy of its bytes (loaded
// from the device when `load`); store() writes the copy back.
class Stage {
 public:
  Stage(const backend::Tensor& t, backend::DeviceMemory& memory, bool load)
      : t_(t), memory_(&memory) {
    if (t.device == backend::Device::kCpu) {
      host_ = t;
      return;
    }
    copy_ = backend::Buffer(t.dtype, t.shape);
    host_ = copy_.tensor();
    if (load) memory.copy_bytes(host_, t);
  }
  [[nodiscard]] const backend::Tensor& host() const noexcept { return host_; }
  void store() {
    if (!copy_.empty()) memory_->copy_bytes(t_, host_);
  }

 private:
  backend::Tensor t_, host_;
  backend::DeviceMemory* memory_;
  backend::Buffer copy_;
};

}  // namespace

StagedCommunicator::StagedCommunicator(Communicator& host, backend::DeviceMemory& memory)
    : host_(&host), memory_(&memory) {}

StagedCommunicator::StagedCommunicator(std::unique_ptr<Communicator> host,
                                       backend::DeviceMemory& memory)
    : owned_(std::move(host)), host_(owned_.get()), memory_(&memory) {}

std::string StagedCommunicator::describe() const {
  return host_->describe() + " (device tensors staged through host memory)";
}

void StagedCommunicator::all_reduce(const backend::Tensor& x, ReduceOp op) {
  Stage s(x, *memory_, true);
  host_->all_reduce(s.host(), op);
  s.store();
}

void StagedCommunicator::reduce_scatter(const backend::Tensor& in, const backend::Tensor& out) {
  Stage si(in, *memory_, true), so(out, *memory_, false);
  host_->reduce_scatter(si.host(), so.host());
  so.store();
}

void StagedCommunicator::all_gather(const backend::Tensor& in, const backend::Tensor& out) {
  // Both staged apart: `in` is read before `out` is written, so in place is fine too.
  Stage si(in, *memory_, true), so(out, *memory_, false);
  host_->all_gather(si.host(), so.host());
  so.store();
}

void StagedCommunicator::broadcast(const backend::Tensor& x, int root) {
  Stage s(x, *memory_, true);
  host_->broadcast(s.host(), root);
  s.store();
}

std::unique_ptr<Communicator> StagedCommunicator::split(int color, int key) {
  return std::make_unique<StagedCommunicator>(host_->split(color, key), *memory_);
}

}  // namespace tailor::comm
