#include "train/optimiser.hpp"

#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace exprflow {

namespace {

bool fusable(const Tensor& p) {
  return p.device().type() == at::kCPU && p.scalar_type() == at::kFloat && p.is_contiguous();
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

 private:
  torch::optim::AdamW optimiser_;
};

class FusedCpuAdamW final : public Optimiser {
 public:
  FusedCpuAdamW(std::vector<Tensor> params, const AdamWSettings& s) : params_(std::move(params)), s_(s) {
    for (const Tensor& p : params_) {
      if (!fusable(p)) {
        throw std::invalid_argument("the fused AdamW takes contiguous float32 CPU parameters only");
      }
      exp_avg_.push_back(at::zeros_like(p));
      exp_avg_sq_.push_back(at::zeros_like(p));
    }
  }

  void set_learning_rate(double lr) override { s_.learning_rate = lr; }

  void zero_grad() override {
    for (Tensor& p : params_) {
      if (p.mutable_grad().defined()) p.mutable_grad().zero_();
    }
  }

  void step() override {
    ++steps_;
    // The constants as LibTorch's kernels use them: computed in double, applied in float.
    const double bias1 = 1 - std::pow(s_.beta1, static_cast<double>(steps_));
    const double bias2 = 1 - std::pow(s_.beta2, static_cast<double>(steps_));
    const float decay = static_cast<float>(1 - s_.learning_rate * s_.weight_decay);
    const bool decays = s_.weight_decay != 0;
    const float b1 = static_cast<float>(s_.beta1), one_minus_b1 = static_cast<float>(1 - s_.beta1);
    const float b2 = static_cast<float>(s_.beta2), one_minus_b2 = static_cast<float>(1 - s_.beta2);
    const float root_bias2 = static_cast<float>(std::sqrt(bias2));
    const float eps = static_cast<float>(s_.eps);
    const float step_size = static_cast<float>(-s_.learning_rate / bias1);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor& grad_tensor = params_[i].grad();
      if (!grad_tensor.defined()) continue;
      const Tensor grad_contiguous = grad_tensor.contiguous();
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

 private:
  std::vector<Tensor> params_, exp_avg_, exp_avg_sq_;
  AdamWSettings s_;
  long steps_ = 0;
};

}  // namespace

std::unique_ptr<Optimiser> make_libtorch_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  return std::make_unique<LibTorchAdamW>(std::move(params), settings);
}

std::unique_ptr<Optimiser> make_fused_cpu_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  return std::make_unique<FusedCpuAdamW>(std::move(params), settings);
}

std::unique_ptr<Optimiser> make_adamw(std::vector<Tensor> params, const AdamWSettings& settings) {
  const bool fused = std::all_of(params.begin(), params.end(), fusable);
  return fused ? make_fused_cpu_adamw(std::move(params), settings) : make_libtorch_adamw(std::move(params), settings);
}

}  // namespace exprflow
