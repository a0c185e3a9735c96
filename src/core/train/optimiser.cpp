#include "train/optimiser.hpp"

#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace exprflow {

namespace {

bool fusable(const Tensor& p) {
  return p.device().type() == at::kCPU && p.scalar_type() == at::kFloat && p.is_contiguous();
}

// LibTorch's optimisers key their per-parameter state by the parameter's
// TensorImpl: as its address written to a string in LibTorch 1.x, as the
// address itself in later versions.
template <typename Map>
typename Map::key_type state_key(const Map&, const Tensor& p) {
  void* impl = p.unsafeGetTensorImpl();
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream text;
    text << impl;
    return text.str();
  } else {
    return impl;
  }
}

// LibTorch's AdamW: a parameter keeps a (zeroed) gradient once it had one,
// and the optimiser updates it at every later step even when a minibatch
// leaves it out of the graph (its moments decay, weight decay applies). A
// resumed run must do the same, so every parameter the state has updated
// gets a zero gradient now. (The fused AdamW keeps that record itself.)
void keep_gradients_of_updated(const OptimiserState& state, const std::vector<Tensor>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    if (state.steps[i] > 0 && !p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
  }
}

void check_state(const OptimiserState& state, const std::vector<Tensor>& params) {
  const size_t n = params.size();
  if (state.steps.size() != n || state.exp_avg.size() != n || state.exp_avg_sq.size() != n) {
    throw std::invalid_argument("the optimiser state holds " + std::to_string(state.steps.size()) +
                                " parameters, the model has " + std::to_string(n));
  }
  for (size_t i = 0; i < n; ++i) {
    if (state.exp_avg[i].sizes() != params[i].sizes() || state.exp_avg_sq[i].sizes() != params[i].sizes()) {
      throw std::invalid_argument("the optimiser state of parameter " + std::to_string(i) + " has shape " +
                                  c10::str(state.exp_avg[i].sizes()) + ", the parameter " +
                                  c10::str(params[i].sizes()));
    }
  }
}

class LibTorchAdamW final : public Optimiser {
 public:
  LibTorchAdamW(std::vector<Tensor> params, const AdamWSettings& s)
      : optimiser_(std::move(params), torch::optim::AdamWOptions(s.learning_rate)
                                          .weight_decay(s.weight_decay)
                                          .betas({s.beta1, s.beta2})
                                          .eps(s.eps)) {}
  void set_learning_rate(double lr) override {
    for (auto& group : optimiser_.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
  void zero_grad() override { optimiser_.zero_grad(); }
  void step() override { optimiser_.step(); }

  // LibTorch keeps AdamW's state per parameter, keyed by its TensorImpl, and
  // creates it at the parameter's first update.
  OptimiserState state() const override {
    OptimiserState out;
    for (const Tensor& p : optimiser_.param_groups().front().params()) {
      const auto found = optimiser_.state().find(state_key(optimiser_.state(), p));
      if (found == optimiser_.state().end()) {
        out.steps.push_back(0);
        out.exp_avg.push_back(at::zeros(p.sizes(), p.options().device(at::kCPU)));
        out.exp_avg_sq.push_back(at::zeros(p.sizes(), p.options().device(at::kCPU)));
        continue;
      }
      const auto& s = static_cast<const torch::optim::AdamWParamState&>(*found->second);
      out.steps.push_back(s.step());
      out.exp_avg.push_back(s.exp_avg().cpu().clone());
      out.exp_avg_sq.push_back(s.exp_avg_sq().cpu().clone());
    }
    return out;
  }

  void load_state(const OptimiserState& state) override {
    const std::vector<Tensor>& params = optimiser_.param_groups().front().params();
    check_state(state, params);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto key = state_key(optimiser_.state(), params[i]);
      optimiser_.state().erase(key);
      if (state.steps[i] == 0) continue;
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(state.steps[i]);
      s->exp_avg(state.exp_avg[i].to(params[i].options()).clone());
      s->exp_avg_sq(state.exp_avg_sq[i].to(params[i].options()).clone());
      optimiser_.state()[key] = std::move(s);
    }
    keep_gradients_of_updated(state, params);
  }

 private:
  torch::optim::AdamW optimiser_;
};

// AdamW that keeps its own moments and step count (the two below share
// this; LibTorch's keeps them inside torch::optim::AdamW), with LibTorch's
// arithmetic: the constants computed in double, applied in the parameters'
// type.
class OwnStateAdamW : public Optimiser {
 public:
  OwnStateAdamW(std::vector<Tensor> params, const AdamWSettings& s) : params_(std::move(params)), s_(s) {
    for (const Tensor& p : params_) {
      exp_avg_.push_back(at::zeros_like(p));
      exp_avg_sq_.push_back(at::zeros_like(p));
    }
    updated_.assign(params_.size(), false);
  }

  void set_learning_rate(double lr) override { s_.learning_rate = lr; }

  // Gradients are dropped, not zeroed: the next backward then hands its
  // result to the parameter instead of adding it to zeros, one pass over
  // every gradient less per step. step() takes a dropped gradient of a
  // parameter it has updated before as zero, so the updates are those of
  // zeroed gradients (moments decay, weight decay applies).
  void zero_grad() override {
    for (Tensor& p : params_) p.mutable_grad() = Tensor();
  }

  void step() override {
    ++steps_;
    Step c;
    c.bias1 = 1 - std::pow(s_.beta1, static_cast<double>(steps_));
    c.bias2 = 1 - std::pow(s_.beta2, static_cast<double>(steps_));
    c.decay = 1 - s_.learning_rate * s_.weight_decay;
    c.step_size = -s_.learning_rate / c.bias1;
    torch::NoGradGuard no_grad;
    std::vector<size_t> taking;  // the parameters this step updates
    std::vector<Tensor> grads;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& grad = params_[i].grad();
      if (!grad.defined() && !updated_[i]) continue;  // never had a gradient: untouched
      updated_[i] = true;
      taking.push_back(i);
      // Left out of this step's graph: a zero gradient (rare; allocated here).
      grads.push_back(grad.defined() ? grad : at::zeros_like(params_[i]));
    }
    update(taking, grads, c);
  }

  // One step count for all parameters (the bias corrections use it), as
  // LibTorch's does for parameters updated at every step; a parameter that
  // never had a gradient is stored with 0 steps.
  OptimiserState state() const override {
    OptimiserState out;
    for (size_t i = 0; i < params_.size(); ++i) {
      out.steps.push_back(updated_[i] ? steps_ : 0);
      out.exp_avg.push_back(exp_avg_[i].cpu().clone());
      out.exp_avg_sq.push_back(exp_avg_sq_[i].cpu().clone());
    }
    return out;
  }

  void load_state(const OptimiserState& state) override {
    check_state(state, params_);
    steps_ = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      steps_ = std::max<long>(steps_, static_cast<long>(state.steps[i]));
      updated_[i] = state.steps[i] > 0;
      exp_avg_[i].copy_(state.exp_avg[i]);
      exp_avg_sq_[i].copy_(state.exp_avg_sq[i]);
    }
  }

 protected:
  struct Step {
    double bias1, bias2, decay, step_size;
  };
  // Updates params_[i] for each i of `taking` (grads: their gradients, in that order).
  virtual void update(const std::vector<size_t>& taking, const std::vector<Tensor>& grads, const Step& c) = 0;

  std::vector<Tensor> params_, exp_avg_, exp_avg_sq_;
  std::vector<bool> updated_;
  AdamWSettings s_;
  long steps_ = 0;
};

// One pass per float32 CPU parameter over (weight, gradient, moments).
class FusedCpuAdamW final : public OwnStateAdamW {
 public:
  FusedCpuAdamW(std::vector<Tensor> params, const AdamWSettings& s) : OwnStateAdamW(std::move(params), s) {
    for (const Tensor& p : params_) {
      if (!fusable(p)) throw std::invalid_argument("the fused AdamW takes contiguous float32 CPU parameters only");
    }
  }

 private:
  void update(const std::vector<size_t>& taking, const std::vector<Tensor>& grads, const Step& c) override {
    const bool decays = s_.weight_decay != 0;
    const float decay = static_cast<float>(c.decay);
    const float b1 = static_cast<float>(s_.beta1), one_minus_b1 = static_cast<float>(1 - s_.beta1);
    const float b2 = static_cast<float>(s_.beta2), one_minus_b2 = static_cast<float>(1 - s_.beta2);
    const float root_bias2 = static_cast<float>(std::sqrt(c.bias2));
    const float eps = static_cast<float>(s_.eps);
    const float step_size = static_cast<float>(c.step_size);
    for (size_t j = 0; j < taking.size(); ++j) {
      const size_t i = taking[j];
      const Tensor grad_contiguous = grads[j].contiguous();
      float* w = params_[i].data_ptr<float>();
      const float* g = grad_contiguous.data_ptr<float>();
      float* m = exp_avg_[i].data_ptr<float>();
      float* v = exp_avg_sq_[i].data_ptr<float>();
      at::parallel_for(0, params_[i].numel(), 1 << 15, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const float wk = decays ? w[k] * decay : w[k];
          const float mk = m[k] * b1 + g[k] * one_minus_b1;
          const float vk = v[k] * b2 + g[k] * g[k] * one_minus_b2;
          const float denom = std::sqrt(vk) / root_bias2 + eps;
          m[k] = mk;
          v[k] = vk;
          w[k] = wk + step_size * (mk / denom);
        }
      });
    }
  }
};

// LibTorch's AdamW arithmetic, op for op, on every parameter at once
// (at::_foreach_*): on a GPU a handful of multi-tensor kernel launches per
// step instead of about ten per parameter (PyTorch's own AdamW does the
// same); on the CPU the same per-tensor ops as LibTorch's, so the same bits.
class ForeachAdamW final : public OwnStateAdamW {
 public:
  using OwnStateAdamW::OwnStateAdamW;

 private:
  void update(const std::vector<size_t>& taking, const std::vector<Tensor>& grads, const Step& c) override {
    if (taking.empty()) return;
    std::vector<Tensor> w, m, v;
    for (size_t i : taking) {
      w.push_back(params_[i]);
      m.push_back(exp_avg_[i]);
      v.push_back(exp_avg_sq_[i]);
    }
    if (s_.weight_decay != 0) at::_foreach_mul_(w, c.decay);
    at::_foreach_mul_(m, s_.beta1);
    at::_foreach_add_(m, grads, 1 - s_.beta1);
    at::_foreach_mul_(v, s_.beta2);
    at::_foreach_addcmul_(v, grads, grads, 1 - s_.beta2);
    std::vector<Tensor> denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, std::sqrt(c.bias2));
    at::_foreach_add_(denom, s_.eps);
    at::_foreach_addcdiv_(w, m, denom, c.step_size);
  }
};

}  // namespace

std::unique_ptr<Optimiser> make_libtorch_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  return std::make_unique<LibTorchAdamW>(std::move(params), settings);
}

std::unique_ptr<Optimiser> make_fused_cpu_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  return std::make_unique<FusedCpuAdamW>(std::move(params), settings);
}

std::unique_ptr<Optimiser> make_foreach_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  return std::make_unique<ForeachAdamW>(std::move(params), settings);
}

std::unique_ptr<Optimiser> make_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  if (std::all_of(params.begin(), params.end(), fusable)) return make_fused_cpu_adamw(std::move(params), settings);
  const auto on_gpu = [](const Tensor& p) { return p.is_cuda(); };
  if (!params.empty() && std::all_of(params.begin(), params.end(), on_gpu)) {
    return make_foreach_adamw(std::move(params), settings);
  }
  return make_libtorch_adamw(std::move(params), settings);
}

}  // namespace exprflow
