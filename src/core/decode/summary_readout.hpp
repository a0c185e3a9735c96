// The decoders' side of the summary token (tokenize/summary_token.hpp): the
// last token read to every gene by a linear map of its own, D -> heads x G,
// without bias (the decoder has its per-gene bias) and zero-initialised, as
// every read-out starts, so that an untrained network predicts 0.
#pragma once

#include "runtime/linear.hpp"

namespace exprflow {

// n_summary: how many summary tokens the decoder reads, 0 or 1. With one,
// registers the map as `decoder`'s "summary": (B, D) -> (B, heads * G),
// heads major (as split_heads() reads them); with none, a null map.
Linear register_summary_readout(torch::nn::Module& decoder, int64_t n_summary, int64_t token_dim, int64_t heads,
                                int64_t n_genes);

}  // namespace exprflow
