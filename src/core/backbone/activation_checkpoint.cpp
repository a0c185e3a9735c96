#include "backbone/activation_checkpoint.hpp"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include "backbone/dit_block.hpp"

namespace exprflow {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  // Runs without gradient tracking (as every custom Function's forward does):
  // none of the block's intermediate tensors is kept.
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& c, DiTBlockImpl* block) {
    // The context holds IValues only; the block's address travels as an
    // integer and is read back in backward, while the model still owns it.
    ctx->saved_data["block"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(block));
    ctx->save_for_backward({x, c});
    return block->forward(x, c);  // (B, T, D)
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto* block = reinterpret_cast<DiTBlockImpl*>(static_cast<intptr_t>(ctx->saved_data["block"].toInt()));
    const variable_list saved = ctx->get_saved_variables();
    // Fresh leaves: the inner backward stops at them and leaves their
    // gradients in .grad, while the block's parameters accumulate theirs as
    // in an ordinary backward pass (a reentrant backward, as PyTorch's
    // torch.utils.checkpoint does).
    Tensor x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    Tensor c = saved[1].detach().requires_grad_(saved[1].requires_grad());
    Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      y = block->forward(x, c);  // (B, T, D), recomputed
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), c.grad(), Tensor()};
  }
};

}  // namespace

Tensor checkpointed_forward(DiTBlockImpl* block, const Tensor& x, const Tensor& c) {
  return CheckpointedBlock::apply(x, c, block);
}

}  // namespace exprflow
