// The state of the observed populations along the sequence of time points:
// a diagonal state-space model in continuous time (S4D's kernel form, with
// real rates) driven by a set-pooled summary of each observed population,
// read at any time (issue 12's "SSM over the sequence of time points").
//
// Each population k, observed at time t_k, enters as an impulse B u_k, where
// u_k is the mean over its cells of a small MLP (a DeepSets summary). Between
// observations the state decays exactly, mode n at rate r_n, so the state at
// any time tau, observed or not, is the SSM's impulse response summed over the
// populations:
//   forward  h_f(tau) = sum_{t_k <= tau} exp(-r (tau - t_k)) * B_f u_k
//   backward h_b(tau) = sum_{t_k >  tau} exp(-r (t_k - tau)) * B_b u_k
// (the forward scan carries what came before, the backward one what comes
// after, as in bidirectional S4 layers), and the context C [h_f; h_b] joins
// the time embedding of the velocity field. Irregular gaps between time
// points are handled by the exact exponentials, not by a step size.
#pragma once

#include <vector>

#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class PopulationContextImpl : public torch::nn::Module {
 public:
  // dim: the cells' dimension; hidden: the summary's and the output's width;
  // state_size: modes per direction, with rates log-spaced over [1, 30] per
  // unit of the field's time (the whole observed range is 1): memories from
  // the whole course down to a thirtieth of it.
  PopulationContextImpl(int64_t dim, int64_t hidden, int64_t state_size);

  // Summary of each population (one (n_k, d) tensor per observed time): (K, H).
  Tensor summarise(const std::vector<Tensor>& populations);
  // The context at times tau given the summaries (K, H) of the populations
  // observed at `knots` (K, increasing): (B,) -> (B, H).
  Tensor forward(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau);
  // The states h_f, h_b at tau by the recurrence over the knots (one decay
  // and one impulse per observed time, then one decay to tau): (B, 2N). The
  // reference forward()'s direct sums are tested against.
  Tensor states_by_recurrence(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau);
  // The same states as forward() reads them (direct sums over the knots).
  Tensor states(const Tensor& summaries, const std::vector<double>& knots, const Tensor& tau);

  Tensor rates() const { return log_rate_.exp(); }  // (N,)

 private:
  Linear summary_in_{nullptr}, summary_out_{nullptr};
  Linear input_forward_{nullptr}, input_backward_{nullptr};  // B_f, B_b: H -> N
  Linear output_{nullptr};                                   // C: 2N -> H
  Tensor log_rate_;                                          // (N,)
};
TORCH_MODULE(PopulationContext);

}  // namespace exprflow
