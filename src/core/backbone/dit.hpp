// DiT backbone: n_layers DiT blocks (adaLN-Zero, modulated by time +
// condition) followed by DiT's final adaLN + LayerNorm.
#pragma once

#include "backbone/backbone.hpp"
#include "backbone/dit_block.hpp"

namespace exprflow {

class DiTImpl : public BackboneImpl {
 public:
  // graph: attention along a gene graph's edges only, in every block. A
  // graph with a cell node adds its token to the sequence, which leaves it
  // after the final layer: the genes' mean token plus a learned one, or with
  // cell_node_summary a learned weighted sum of the gene tokens instead of
  // their mean, sum_g w_g * token_g (w_g (D,) per gene). Gene value tokens
  // are affine in each gene's value (e_g + x_g v + c), so that sum is a
  // linear map of the cell's whole state in which every gene counts by its
  // own weights - the summary token of rank, set and pathway tokens
  // (tokenize/summary_token.hpp) - where the mean sees only the state's mean
  // (along v) in the first block.
  // checkpoint_blocks: in training, keep only each block's input and recompute
  // its activations in backward (backbone/activation_checkpoint.hpp).
  // condition_path: "adaln" (in c), "cross_attention" (each block attends
  // to the condition tokens) or "tokens" (they join the sequence and leave
  // it after the final layer; not with a gene graph). See BackboneImpl.
  DiTImpl(int64_t dim, int64_t n_layers, int64_t n_heads, double mlp_ratio,
          std::shared_ptr<EdgeIndex> graph = nullptr, bool checkpoint_blocks = false,
          const std::string& condition_path = "adaln", bool cell_node_summary = false);
  Tensor forward(const Tensor& tokens, const Tensor& c) override;  // (B, T, D) -> (B, T, D)
  std::string condition_path() const override { return condition_path_; }
  Tensor forward_conditioned(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens) override;

  const torch::nn::ModuleList& blocks() const { return blocks_; }
  bool checkpoints_blocks() const { return checkpoint_blocks_; }

 private:
  // Blocks and final layer over x (B, T, D), the cell node's token added and
  // dropped where the graph has one; condition_tokens for cross-attention.
  Tensor run(const Tensor& tokens, const Tensor& c, const Tensor& condition_tokens);

  torch::nn::ModuleList blocks_{nullptr};
  FinalModulation final_{nullptr};
  Tensor cell_token_;  // (D,) the cell node's learned token; undefined without one
  Tensor cell_weights_;  // (G, D) each gene token's weights in the cell node's start; cell_node_summary only
  bool checkpoint_blocks_;
  std::string condition_path_;
};

// The condition paths a DiT backbone takes.
std::vector<std::string> condition_paths();
TORCH_MODULE(DiT);

}  // namespace exprflow
