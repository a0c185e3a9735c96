#include "data/nmf_modules.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include "data/nmf.hpp"

namespace exprflow {

NamedTensor nmf_gene_modules(const ExpressionSource& data, const NmfSettings& s) {
  if (s.modules < 1) throw std::invalid_argument("setting 'n_modules' must be at least 1");
  if (!(s.min_share > 0 && s.min_share <= 1)) throw std::invalid_argument("NMF module share must be in (0, 1]");
  const int n_all = data.n_cells(), G = data.n_genes();
  if (n_all < 2) throw std::invalid_argument("NMF gene modules need at least 2 cells");
  std::vector<int> cells(n_all);
  std::iota(cells.begin(), cells.end(), 0);
  if (n_all > s.max_cells) {
    std::mt19937_64 rng(s.seed);
    std::shuffle(cells.begin(), cells.end(), rng);
    cells.resize(s.max_cells);
    std::sort(cells.begin(), cells.end());
  }
  const int64_t n = static_cast<int64_t>(cells.size());
  Tensor x = at::empty({n, G}, at::TensorOptions().dtype(at::kFloat));  // (n, G) log1p-normalised
  data.fill_log_normalised(cells, x.data_ptr<float>());
  const NmfFactors f = nmf(x, s.modules, s.iterations, s.seed);
  // A module's weight on a gene, in the units of the data: H scaled by the
  // typical size of the module's cell scores, so modules compare.
  const Tensor loading = f.gene_weights * f.cell_scores.mean(0).unsqueeze(1);          // (k, G)
  const Tensor share = loading / (loading.sum(0, /*keepdim=*/true) + kNmfEpsilon);        // (k, G)
  const Tensor member = (share >= s.min_share).to(at::kFloat).contiguous();              // (k, G)

  NamedTensor out;
  out.column_names = data.genes();
  const float* m = member.data_ptr<float>();
  for (int64_t j = 0; j < s.modules; ++j) {
    const float* row = m + j * G;
    if (std::none_of(row, row + G, [](float v) { return v > 0; })) continue;
    out.values.insert(out.values.end(), row, row + G);
    out.row_names.push_back("nmf_" + std::to_string(j + 1));
  }
  if (out.row_names.empty()) throw std::invalid_argument("NMF found no module that dominates any gene");
  out.shape = {static_cast<int64_t>(out.row_names.size()), G};
  return out;
}

}  // namespace exprflow
