#include "decode/summary_readout.hpp"

namespace exprflow {

Linear register_summary_readout(torch::nn::Module& decoder, int64_t token_dim, int64_t heads, int64_t n_genes) {
  Linear readout =
      decoder.register_module("summary", Linear(torch::nn::LinearOptions(token_dim, heads * n_genes).bias(false)));
  torch::NoGradGuard no_grad;
  readout->weight.zero_();
  return readout;
}

}  // namespace exprflow
