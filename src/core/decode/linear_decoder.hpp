// Tokens -> gene space by one linear map of the flattened tokens (zero-
// initialised). For backbones that already end in a wide hidden state (the
// residual MLP), an extra hidden layer would only add parameters.
#pragma once

#include "decode/gene_decoder.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

class LinearDecoderImpl : public GeneDecoderImpl {
 public:
  LinearDecoderImpl(int64_t in_features, int64_t n_genes, int64_t heads = 1);
  GeneOutput forward(const Tensor& tokens) override;  // (B, T, D) -> (B, G) [x 2]

 private:
  int64_t n_genes_, heads_;
  Linear out_{nullptr};
};
TORCH_MODULE(LinearDecoder);

}  // namespace exprflow
