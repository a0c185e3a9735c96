// Learning rate: linear warm-up to the peak, then cosine decay to
// peak * min_ratio at the last step.
#pragma once

namespace exprflow {

struct WarmupCosine {
  double peak = 1e-4;
  long warmup_steps = 0;
  long total_steps = 1;
  double min_ratio = 0.1;

  double at(long step) const;  // step counts from 0
};

}  // namespace exprflow
