#include "decode/summary_readout.hpp"

#include <stdexcept>
#include <string>

namespace exprflow {

Linear register_summary_readout(torch::nn::Module& decoder, int64_t n_summary, int64_t token_dim, int64_t heads,
                                int64_t n_genes) {
  if (n_summary != 0 && n_summary != 1) {
    throw std::invalid_argument("a decoder reads 0 or 1 summary tokens, not " + std::to_string(n_summary));
  }
  if (n_summary == 0) return Linear(nullptr);
  Linear readout =
      decoder.register_module("summary", Linear(torch::nn::LinearOptions(token_dim, heads * n_genes).bias(false)));
  torch::NoGradGuard no_grad;
  readout->weight.zero_();
  return readout;
}

}  // namespace exprflow
