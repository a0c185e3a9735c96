#include "data/cell_batch.hpp"

#include <algorithm>
#include <stdexcept>

namespace exprflow {

Covariates covariates_of(const CovariateColumns& columns, const std::vector<int>& cells,
                         const at::Device& device) {
  Covariates out;
  for (const auto& [name, codes] : columns) {
    std::vector<int64_t> picked(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i] < 0 || static_cast<size_t>(cells[i]) >= codes.size()) {
        throw std::out_of_range("cell " + std::to_string(cells[i]) + " has no value of covariate '" + name + "'");
      }
      picked[i] = codes[cells[i]];
    }
    out[name] = at::tensor(picked, at::TensorOptions().dtype(at::kLong)).to(device);  // (B,)
  }
  for (const auto& [name, set] : columns.sets) {
    const int64_t b = static_cast<int64_t>(cells.size()), k = set.width;
    std::vector<int64_t> members(b * k);
    std::vector<float> doses(set.doses.empty() ? 0 : b * k);
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        members[i * k + j] = set.members[cells[i] * k + j];
        if (!doses.empty()) doses[i * k + j] = set.doses[cells[i] * k + j];
      }
    }
    out[members_key(name)] = at::tensor(members, at::TensorOptions().dtype(at::kLong)).view({b, k}).to(device);  // (B, K)
    if (!doses.empty()) out[doses_key(name)] = at::tensor(doses).view({b, k}).to(device);                      // (B, K)
  }
  return out;
}

Covariates null_covariates(const Covariates& like) {
  Covariates out;
  for (const auto& [name, codes] : like) out[name] = is_side_tensor(name) ? codes : at::full_like(codes, -1);
  return out;
}

Covariates concat_covariates(const Covariates& a, const Covariates& b) {
  Covariates out;
  for (const auto& [name, codes] : a) {
    Tensor other = b.at(name);
    if (is_side_tensor(name) && codes.size(1) != other.size(1)) {
      // Perturbation members of two widths: pad the narrower with empty slots.
      const int64_t k = std::max(codes.size(1), other.size(1));
      const auto widen = [k](const Tensor& t) {
        const double empty = t.scalar_type() == at::kLong ? -1.0 : 0.0;
        return at::constant_pad_nd(t, {0, k - t.size(1)}, empty);  // (B, k)
      };
      out[name] = at::cat({widen(codes), widen(other)});
      continue;
    }
    out[name] = at::cat({codes, other});
  }
  return out;
}

std::vector<int> cell_range(int lo, int hi) {
  std::vector<int> cells;
  for (int c = lo; c < hi; ++c) cells.push_back(c);
  return cells;
}

CellBatch make_cell_batch(const ExpressionSource& data, const std::vector<int>& cells,
                          const CovariateColumns& columns, const GeneStandardiser& scale,
                          bool with_counts, const at::Device& device) {
  const int64_t B = static_cast<int64_t>(cells.size()), G = data.n_genes();
  auto cpu_float = at::TensorOptions().dtype(at::kFloat);
  CellBatch batch;
  std::vector<double> sizes(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) sizes[i] = data.library_sizes()[cells[i]];
  // The per-gene scaling as plain floats on the CPU, where the batch is made.
  const Tensor mean = scale.mean.to(at::kCPU, at::kFloat).contiguous(), sd = scale.sd.to(at::kCPU, at::kFloat).contiguous();
  Tensor x = at::empty({B, G}, cpu_float);                              // (B, G)
  Tensor counts = with_counts ? at::empty({B, G}, cpu_float) : Tensor();  // (B, G)
  data.fill_standardised(cells, mean.data_ptr<float>(), sd.data_ptr<float>(), x.data_ptr<float>(),
                         with_counts ? counts.data_ptr<float>() : nullptr);
  if (with_counts) batch.counts = counts.to(device);
  batch.expression = x.to(device);  // (B, G)
  batch.library_size = at::tensor(sizes, cpu_float.dtype(at::kDouble)).to(at::kFloat).to(device);  // (B,)
  batch.covariates = covariates_of(columns, cells, device);
  return batch;
}

}  // namespace exprflow
