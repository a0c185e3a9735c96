#include "data/covariate_groups.hpp"

#include <map>
#include <stdexcept>

namespace exprflow {

std::vector<std::vector<int64_t>> covariate_groups(const Covariates& covariates, int64_t n) {
  std::vector<std::vector<int64_t>> codes;
  for (const auto& [name, values] : covariates) {
    if (is_side_tensor(name)) continue;  // a perturbation's level code names its combination
    if (values.size(0) != n) throw std::invalid_argument("covariate '" + name + "' has a code per cell of another batch");
    Tensor v = values.to(at::kCPU).to(at::kLong).contiguous();
    codes.emplace_back(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + n);
  }
  std::map<std::vector<int64_t>, std::vector<int64_t>> by_key;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> key;
    key.reserve(codes.size());
    for (const auto& column : codes) key.push_back(column[i]);
    by_key[key].push_back(i);
  }
  std::vector<std::vector<int64_t>> groups;
  groups.reserve(by_key.size());
  for (auto& [key, members] : by_key) groups.push_back(std::move(members));
  return groups;
}

Tensor shared_within_groups(const Tensor& values, const std::vector<std::vector<int64_t>>& groups) {
  std::vector<int64_t> first(values.size(0), -1);
  for (const auto& members : groups) {
    for (int64_t i : members) first.at(i) = members.front();
  }
  Tensor index = at::tensor(first, at::TensorOptions().dtype(at::kLong)).to(values.device());  // (n,)
  return values.index_select(0, index);
}

Tensor cell_set_ids(const std::vector<std::vector<int64_t>>& groups, int64_t n, int64_t set_size,
                    const at::Device& device) {
  if (set_size < 1) throw std::invalid_argument("setting 'set_size' must be at least 1");
  std::vector<int64_t> ids(n, -1);
  int64_t next = 0;
  for (const auto& members : groups) {
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0 && i % set_size == 0) ++next;
      ids.at(members[i]) = next;
    }
    if (!members.empty()) ++next;
  }
  return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(device);  // (n,)
}

}  // namespace exprflow
