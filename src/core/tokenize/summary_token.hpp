// The summary token that rank, set and pathway tokenizers can end their
// tokens with: a learned linear map of the whole state, S x_b + s_0 (G -> D).
// Each of those tokenizers sees a gene's value only in part: rank tokens only
// the cell's top genes, set pooling through a softmax-weighted mean in which
// every value enters by one shared direction, pathway tokens a gene set at a
// time. The summary token gives attention one view of the cell in which every
// gene counts by its own weights (as scDiVa's latent anchor token, arXiv
// 2602.03477); the decoders read it back to every gene by a map of their own
// (decode/summary_readout.hpp). It is a setting, summary_token, on by default
// where it was measured to help (models/compositions.cpp); files from before
// it read without one (api/model_record.cpp).
#pragma once

#include "runtime/linear.hpp"

namespace exprflow {

// Its name among named tokens (pathway tokens), after the others.
inline constexpr char kSummaryTokenName[] = "summary";

// Registers the map as `tokenizer`'s "summary" (G -> D, LibTorch's default
// initialisation: about unit-scale tokens for standardised states).
Linear register_summary_token(torch::nn::Module& tokenizer, int64_t n_genes, int64_t token_dim);

// tokens (B, T, D) and the state x (B, G) they came from -> (B, T + 1, D);
// the tokens as they are where `summary` is null (a tokenizer without one).
Tensor append_summary_token(const Tensor& tokens, Linear& summary, const Tensor& x);

}  // namespace exprflow
