// Siamese comparison models: one shared region encoder applied to regions i
// and j, combined as [h_i, h_j, h_i * h_j, |h_i - h_j|] -> MLP head -> scalar.
#pragma once

#include <memory>

#include "connectivity/pair_network.hpp"
#include "connectivity/region_encoders.hpp"

namespace exprflow {

class SiameseNetworkImpl : public PairNetworkImpl {
 public:
  // spec keys: d_model, dropout, head_hidden (plus the encoder's).
  SiameseNetworkImpl(const Options& spec, std::shared_ptr<RegionEncoderImpl> encoder);

  Tensor forward(const PairBatch& batch) override;  // -> (B,)
  // Region i's self-attention of layer `layer`: (B, T, T).
  Tensor attention_map(const PairBatch& batch, int64_t layer) override;
  int64_t n_layers() const override { return encoder_->n_layers(); }
  double attention_size_per_pair() const override { return 2 * encoder_->attention_size(); }

 private:
  std::shared_ptr<RegionEncoderImpl> encoder_;
  MlpHead head_{nullptr};
};
TORCH_MODULE(SiameseNetwork);

}  // namespace exprflow
