// Activation checkpointing of a transformer block: the forward pass keeps only
// the block's inputs, and the backward pass runs the block again (with
// gradients on) to get the activations it needs. Memory per block falls from
// ~15 (B, T, D) tensors to one, for ~1.3x the compute; the models with one
// token per gene (T = genes) need it to train 20,000 genes in a few GB.
#pragma once

#include <functional>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class DiTBlockImpl;

// block->forward(x, c), its activations recomputed in backward. The block must
// outlive the backward pass (it does: the model owns it) and must be
// deterministic (no dropout), so that the recomputation repeats the forward.
Tensor checkpointed_forward(DiTBlockImpl* block, const Tensor& x, const Tensor& c);  // (B, T, D), (B, D)

}  // namespace exprflow
