// The bilinear baseline: connectivity as a low-rank bilinear form of the two
// regions' standardised expression profiles,
//
//   asymmetric:  f(i, j) = m + s (c + (z_i' U) . (z_j' V))                 W = U V'
//   symmetric:   f(i, j) = m + s (c + (z_i' U) . (z_j' V) + (z_i' V) . (z_j' U))
//                                                                          W = U V' + V U'
//
// with z = (x - center) / spread (center: per-gene mean, spread: one sd over
// all centred values of the training regions) and the target standardised by
// its training mean m and sd s; U, V are genes x rank. The statistics are
// fitted once from the training data (fit_scaling) and saved as buffers. The
// loss is the MSE plus a ridge penalty, lambda (|U|^2 + |V|^2) in units of
// the standardised target: the R baseline's objective
// 1/2 mean((f_std - y_std)^2) + lambda/2 (|U|^2 + |V|^2), scaled by 2 s^2.
//
// A PairNetwork, so the connectivity model trains it with the shared trainer
// (see the registry's training defaults for it: full-batch Adam without
// weight decay, constant learning rate, the best epoch on the validation
// pairs kept) and saves, loads and predicts it like the attention models.
//
// spec keys: rank, lambda, symmetric.
#pragma once

#include "connectivity/pair_network.hpp"
#include "exprflow/options.hpp"

namespace exprflow {

class BilinearNetworkImpl : public PairNetworkImpl {
 public:
  BilinearNetworkImpl(const Options& spec, int64_t n_genes);

  Tensor forward(const PairBatch& batch) override;  // -> (B,)
  // No attention: throws std::invalid_argument.
  Tensor attention_map(const PairBatch& batch, int64_t layer) override;
  int64_t n_layers() const override { return 0; }
  double attention_size_per_pair() const override { return 0; }
  void fit_scaling(const PairBatch& train, const Tensor& target) override;
  Tensor penalty() override;

  bool symmetric() const { return symmetric_; }

 private:
  Tensor standardise(const Tensor& x) const;  // (N, G) -> (N, G)

  int64_t rank_;
  double lambda_;
  bool symmetric_;
  Tensor u_, v_;     // (G, rank) parameters
  Tensor offset_;    // () parameter c
  Tensor center_;    // (G,) buffer
  Tensor spread_;    // () buffer
  Tensor target_mean_, target_sd_;  // () buffers
};
TORCH_MODULE(BilinearNetwork);

}  // namespace exprflow
