#include "trainer/trainer.h"

#include "trainer/training_run.h"

namespace tailor::trainer {

TrainSummary train(const config::ExperimentConfig& config,
                   std::unique_ptr<comm::Communicator> world, const TrainOptions& options) {
  return TrainingRun(config, std::move(world), options).run();
}

}  // namespace tailor::trainer
