// The checkpoints of one training call of a model that trains in stages
// (gene-space models: "model"; latent models: "vae", then "latent"). Every
// stage writes its checkpoints to the same file, with the model's bytes as
// they are then, so the file always holds the latest state of the run. A call
// resuming from such a file skips the stages the run had finished (their
// weights are in the model the file holds) and continues the one that was
// training.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "train/checkpoint.hpp"
#include "train/trainer.hpp"

namespace exprflow {

class StageCheckpoints {
 public:
  // Reads options.resume when it is set; throws std::invalid_argument when
  // that checkpoint's stage is not one of `stages` (in training order).
  StageCheckpoints(CheckpointOptions options, std::vector<std::string> stages);

  bool resuming() const { return resumed_.has_value(); }
  // Whether the resumed run had finished `stage` (a stage before the checkpoint's).
  bool finished(const std::string& stage) const;
  // The state to continue `stage` from: null unless the checkpoint is of that stage.
  const TrainerState* resume_state(const std::string& stage) const;
  // Makes `task` write `stage`'s checkpoints with the model's bytes (when a
  // checkpoint file was asked for).
  void attach(TrainingTask& task, const std::string& stage, std::function<std::string()> model_bytes) const;

 private:
  long index_of(const std::string& stage) const;

  CheckpointOptions options_;
  std::vector<std::string> stages_;
  std::optional<Checkpoint> resumed_;
};

}  // namespace exprflow
