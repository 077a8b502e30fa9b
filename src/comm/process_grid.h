// ProcessGrid: the world split into tensor-parallel (TP) and data-parallel (DP) groups.
//
// World rank w = d * T + t: the T ranks of a TP group are contiguous (so a TP group stays inside
// a node), and DP group t holds ranks t, T + t, 2T + t, ... No global state: the grid is passed
// explicitly to the model, optimizer and trainer.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace tailor::comm {

class ProcessGrid {
 public:
  // world.size() must equal tensor * data.
  ProcessGrid(std::unique_ptr<Communicator> world, int tensor, int data);
  // A one-process grid.
  static ProcessGrid single();

  [[nodiscard]] Communicator& world() const noexcept { return *world_; }
  [[nodiscard]] Communicator& tp() const noexcept { return *tp_; }
  [[nodiscard]] Communicator& dp() const noexcept { return *dp_; }
  [[nodiscard]] int tp_size() const noexcept { return tp_->size(); }
  [[nodiscard]] int tp_rank() const noexcept { return tp_->rank(); }
  [[nodiscard]] int dp_size() const noexcept { return dp_->size(); }
  [[nodiscard]] int dp_rank() const noexcept { return dp_->rank(); }

 private:
  std::unique_ptr<Communicator> world_, tp_, dp_;
};

}  // namespace tailor::comm
