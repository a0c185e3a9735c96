// ConnectivityModel for every pair network of the connectivity registry (the
// attention models and the bilinear baseline): MSE (+ the network's penalty)
// training through the shared trainer (AdamW, warm-up + cosine, clipping,
// EMA, early stopping on the validation pairs), batched prediction from the
// EMA weights, attention maps, and a one-file format (weights, spec JSON,
// gene embedding, coordinate scaling, history).
#pragma once

#include <array>
#include <memory>


#include "connectivity/pair_network.hpp"
#include "exprflow/connectivity.hpp"
#include "io/json.hpp"

namespace exprflow {

class PairConnectivityModel final : public ConnectivityModel {
 public:
  PairConnectivityModel(const Options& spec, const GeneEmbedding& genes);

  TrainReport train(const RegionData& regions, const RegionPairs& train_pairs,
                    const RegionPairs& validation_pairs, const Options& train_options,
                    const TrainCallbacks& callbacks) override;
  std::vector<float> predict(const RegionData& regions, const RegionPairs& pairs, int batch_size) override;
  std::vector<float> attention_map(const RegionData& regions, int i, int j, int layer, int* rows,
                                   int* cols) override;
  std::string to_bytes() const override;
  static std::unique_ptr<PairConnectivityModel> from_bytes(std::string_view bytes, const std::string& source,
                                                           bool trust_legacy);

  const Options& spec() const override { return spec_; }
  const std::vector<EpochRecord>& history() const override { return history_; }
  long parameter_count() const override;

  // The networks themselves, for tests and benchmarks of the core.
  PairNetworkImpl& network() { return *network_; }
  PairNetworkImpl& ema_network() { return *ema_; }

 private:
  struct RegionTensors {
    Tensor expression;  // (R, G)
    Tensor coords;      // (R, 3) normalised, or undefined
  };
  RegionTensors region_tensors(const RegionData& regions) const;
  // Pairs `rows` of (i, j) -> a batch on the model's device.
  PairBatch make_batch(const RegionTensors& data, const std::vector<int>& i, const std::vector<int>& j,
                       const std::vector<int>& rows) const;
  void check_pairs(const RegionData& regions, const RegionPairs& pairs, const char* what, bool need_target) const;
  void fit_coordinate_scale(const RegionData& regions);
  // Before the first training: the network's own data statistics
  // (PairNetworkImpl::fit_scaling), copied to the EMA network too.
  void fit_network_scaling(const RegionTensors& data, const RegionPairs& train_pairs);
  // Pairs per forward pass so that one pass holds at most `budget_mb` of
  // attention weights (training keeps every layer's for the backward pass).
  long pairs_per_pass(double budget_mb, bool training) const;

  Options spec_;
  GeneEmbedding genes_;
  at::Device device_;
  std::shared_ptr<PairNetworkImpl> network_, ema_;
  std::vector<EpochRecord> history_;
  bool trained_ = false;
  // Coordinates are mapped to [-1, 1] per axis by the ranges of the first
  // training data (fixed then, so later inputs keep their meaning).
  bool coordinate_scale_fitted_ = false;
  std::array<double, 3> coord_low_{{0, 0, 0}}, coord_span_{{1, 1, 1}};
};

}  // namespace exprflow
