#include "comm/process_grid.h"

namespace tailor::comm {

ProcessGrid::ProcessGrid(std::unique_ptr<Communicator> world, int tensor, int data)
    : world_(std::move(world)) {
  TAILOR_ASSERT(tensor >= 1 && data >= 1 && world_->size() == tensor * data,
                "grid {} x {} for {} ranks", tensor, data, world_->size());
  const int w = world_->rank();
  tp_ = world_->split(/*color=*/w / tensor, /*key=*/w % tensor);
  dp_ = world_->split(/*color=*/w % tensor, /*key=*/w / tensor);
}

ProcessGrid ProcessGrid::single() { return ProcessGrid(std::make_unique<SelfCommunicator>(), 1, 1); }

}  // namespace tailor::comm
