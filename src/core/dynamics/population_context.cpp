#include "dynamics/population_context.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

namespace {

// Fastest mode's rate per unit of the field's time: it forgets a population
// within about a thirtieth of the observed range.
constexpr double kFastestRate = 30.0;

Tensor knots_tensor(const std::vector<double>& knots, const Tensor& like) {
  return at::tensor(knots, at::TensorOptions().dtype(at::kDouble)).to(like.options());  // (K,)
}

void check_inputs(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau) {
  if (summaries.dim() != 2 || summaries.size(0) != static_cast<int64_t>(knots.size()) || knots.empty()) {
    throw std::invalid_argument("population context: one summary per observed time is needed");
  }
  if (tau.dim() != 1) throw std::invalid_argument("population context: tau must be (B,)");
}

}  // namespace

PopulationContextImpl::PopulationContextImpl(int64_t dim, int64_t hidden, int64_t state_size) {
  if (state_size < 1) throw std::invalid_argument("state_size must be at least 1");
  summary_in_ = register_module("summary_in", Linear(dim, hidden));
  summary_out_ = register_module("summary_out", Linear(hidden, hidden));
  input_forward_ = register_module("input_forward", Linear(torch::nn::LinearOptions(hidden, state_size).bias(false)));
  input_backward_ = register_module("input_backward", Linear(torch::nn::LinearOptions(hidden, state_size).bias(false)));
  output_ = register_module("output", Linear(2 * state_size, hidden));
  // Rates log-spaced from 1 (a memory as long as the course) to kFastestRate.
  log_rate_ = register_parameter("log_rate", at::linspace(0.0, std::log(kFastestRate), state_size));
}

Tensor PopulationContextImpl::summarise(const std::vector<Tensor>& populations) {
  std::vector<Tensor> means;
  for (const Tensor& cells : populations) {
    const Tensor features = summary_out_->forward(at::silu(summary_in_->forward(cells)));  // (n_k, H)
    means.push_back(features.mean(0));                                                     // (H,)
  }
  return at::stack(means);  // (K, H)
}

Tensor PopulationContextImpl::states(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau) {
  check_inputs(summaries, knots, tau);
  const Tensor delta = tau.unsqueeze(1) - knots_tensor(knots, tau).unsqueeze(0);  // (B, K): tau - t_k
  const Tensor rate = rates().view({1, 1, -1});                                   // (1, 1, N)
  const Tensor before = (delta >= 0).to(tau.scalar_type()).unsqueeze(2);          // (B, K, 1): t_k <= tau
  const Tensor decay_forward = at::exp(-rate * delta.clamp_min(0).unsqueeze(2)) * before;            // (B, K, N)
  const Tensor decay_backward = at::exp(-rate * (-delta).clamp_min(0).unsqueeze(2)) * (1 - before);  // (B, K, N)
  const Tensor h_forward = (decay_forward * input_forward_->forward(summaries).unsqueeze(0)).sum(1);     // (B, N)
  const Tensor h_backward = (decay_backward * input_backward_->forward(summaries).unsqueeze(0)).sum(1);  // (B, N)
  return at::cat({h_forward, h_backward}, 1);  // (B, 2N)
}

Tensor PopulationContextImpl::states_by_recurrence(const Tensor& summaries, const std::vector<double>& knots,
                                                   const Tensor& tau) {
  check_inputs(summaries, knots, tau);
  const Tensor rate = rates();                                  // (N,)
  const Tensor in_forward = input_forward_->forward(summaries);  // (K, N)
  const Tensor in_backward = input_backward_->forward(summaries);
  const int64_t K = static_cast<int64_t>(knots.size());
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < tau.size(0); ++b) {
    const double t = tau[b].item<double>();
    // Forward scan: decay over each gap, then the population's impulse.
    Tensor h = at::zeros_like(rate);
    double last = knots.front();
    for (int64_t k = 0; k < K && knots[k] <= t; ++k) {
      h = at::exp(-rate * (knots[k] - last)) * h + in_forward[k];
      last = knots[k];
    }
    const Tensor forward = knots.front() <= t ? at::exp(-rate * (t - last)) * h : h;
    // Backward scan, from the last time down to the first one after tau.
    Tensor g = at::zeros_like(rate);
    double next = knots.back();
    for (int64_t k = K - 1; k >= 0 && knots[k] > t; --k) {
      g = at::exp(-rate * (next - knots[k])) * g + in_backward[k];
      next = knots[k];
    }
    const Tensor backward = knots.back() > t ? at::exp(-rate * (next - t)) * g : g;
    rows.push_back(at::cat({forward, backward}));
  }
  return at::stack(rows);  // (B, 2N)
}

Tensor PopulationContextImpl::forward(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau) {
  return output_->forward(states(summaries, knots, tau));  // (B, H)
}

}  // namespace exprflow
