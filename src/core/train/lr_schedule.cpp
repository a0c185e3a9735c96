#include "train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace exprflow {

double WarmupCosine::at(long step) const {
  if (warmup_steps > 0 && step < warmup_steps) return peak * (step + 1) / double(warmup_steps);
  // The last step is total_steps - 1: it is the one that reaches the floor.
  const long decay_steps = std::max(1L, total_steps - warmup_steps - 1);
  const double progress = std::min(1.0, double(step - warmup_steps) / decay_steps);
  const double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return peak * (min_ratio + (1 - min_ratio) * cosine);
}

}  // namespace exprflow
