#include "connectivity/siamese_network.hpp"

#include <tuple>

namespace exprflow {

SiameseNetworkImpl::SiameseNetworkImpl(const Options& spec, std::shared_ptr<RegionEncoderImpl> encoder)
    : encoder_(register_module("encoder", std::move(encoder))) {
  const int64_t d = spec.integer("d_model");
  head_ = register_module("head", MlpHead(4 * d, parse_hidden_sizes(spec.text("head_hidden"), "head_hidden"),
                                          spec.number("dropout")));
}

Tensor SiameseNetworkImpl::forward(const PairBatch& batch) {
  const int64_t B = batch.x_i.size(0);
  Tensor h;  // (2B, D): encodings of the i regions, then of the j regions
  if (batch.expression.defined()) {
    // The encoder sees one region at a time: encode each distinct region of
    // the batch once (80 DK regions vs 2 x 512 rows of a batch) and gather.
    Tensor rows = at::cat({batch.i, batch.j});                          // (2B,)
    auto unique = at::_unique(rows, /*sorted=*/true, /*return_inverse=*/true);
    Tensor codes = encoder_->forward(batch.expression.index_select(0, std::get<0>(unique)));  // (U, D)
    h = codes.index_select(0, std::get<1>(unique));                    // (2B, D)
  } else {
    h = encoder_->forward(at::cat({batch.x_i, batch.x_j}, 0));        // (2B, D)
  }
  Tensor h_i = h.slice(0, 0, B), h_j = h.slice(0, B);                 // (B, D) each
  return head_->forward(at::cat({h_i, h_j, h_i * h_j, (h_i - h_j).abs()}, 1));  // (B, 4D) -> (B,)
}

Tensor SiameseNetworkImpl::attention_map(const PairBatch& batch, int64_t layer) {
  Tensor weights;
  encoder_->forward(batch.x_i, layer, &weights);
  return weights;  // (B, T, T)
}

}  // namespace exprflow
