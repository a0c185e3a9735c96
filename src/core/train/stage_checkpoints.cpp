#include "train/stage_checkpoints.hpp"

#include <algorithm>
#include <stdexcept>

namespace exprflow {

StageCheckpoints::StageCheckpoints(CheckpointOptions options, std::vector<std::string> stages)
    : options_(std::move(options)), stages_(std::move(stages)) {
  if (options_.resume.empty()) return;
  resumed_ = read_checkpoint(options_.resume);
  if (index_of(resumed_->stage) < 0) {
    throw std::invalid_argument("checkpoint '" + options_.resume + "' was written while training stage '" +
                                resumed_->stage + "', which this model does not have");
  }
}

long StageCheckpoints::index_of(const std::string& stage) const {
  const auto found = std::find(stages_.begin(), stages_.end(), stage);
  return found == stages_.end() ? -1 : static_cast<long>(found - stages_.begin());
}

bool StageCheckpoints::finished(const std::string& stage) const {
  return resumed_ && index_of(stage) < index_of(resumed_->stage);
}

const TrainerState* StageCheckpoints::resume_state(const std::string& stage) const {
  return resumed_ && resumed_->stage == stage ? &resumed_->state : nullptr;
}

void StageCheckpoints::attach(TrainingTask& task, const std::string& stage,
                              std::function<std::string()> model_bytes) const {
  if (options_.path.empty()) return;
  task.checkpoint = [path = options_.path, stage, model_bytes = std::move(model_bytes)](const TrainerState& state) {
    write_checkpoint(path, model_bytes(), stage, state);
  };
}

}  // namespace exprflow
