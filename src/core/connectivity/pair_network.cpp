#include "connectivity/pair_network.hpp"
#include "runtime/linear.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace exprflow {

std::vector<int64_t> parse_hidden_sizes(const std::string& text, const std::string& key) {
  std::vector<int64_t> sizes;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a == std::string::npos) {
      throw std::invalid_argument("setting '" + key + "' must be comma-separated positive integers, got '" +
                                  text + "'");
    }
    item = item.substr(a, b - a + 1);
    size_t used = 0;
    long value = 0;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 1) {
      throw std::invalid_argument("setting '" + key + "' must be comma-separated positive integers, got '" +
                                  text + "'");
    }
    sizes.push_back(value);
  }
  return sizes;
}

MlpHeadImpl::MlpHeadImpl(int64_t in, const std::vector<int64_t>& hidden, double dropout) : dropout_(dropout) {
  layers_ = register_module("layers", torch::nn::ModuleList());
  int64_t width = in;
  for (int64_t h : hidden) {
    layers_->push_back(Linear(width, h));
    width = h;
  }
  layers_->push_back(Linear(width, 1));
}

Tensor MlpHeadImpl::forward(const Tensor& x) {
  Tensor h = x;  // (B, in)
  const size_t n = layers_->size();
  for (size_t l = 0; l < n; ++l) {
    h = layers_[l]->as<Linear>()->forward(h);  // (B, width)
    if (l + 1 < n) h = at::dropout(at::gelu(h), dropout_, is_training());
  }
  return h.squeeze(-1);  // (B,)
}

AttentionPoolingImpl::AttentionPoolingImpl(int64_t dim) {
  query_ = register_parameter("query", at::randn({dim}) * 0.02);
}

Tensor AttentionPoolingImpl::weights(const Tensor& x) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(x.size(-1)));
  return at::softmax(at::matmul(x, query_) * scale, -1);  // (B, T)
}

Tensor AttentionPoolingImpl::forward(const Tensor& x) {
  return at::matmul(weights(x).unsqueeze(1), x).squeeze(1);  // (B, 1, T) @ (B, T, D) -> (B, D)
}

}  // namespace exprflow
