// CellBatch: everything a model may condition on for one minibatch.
//
// The model's data path fills it from an ExpressionSource: expression on the
// model's scale, raw counts only when a count likelihood needs them, library
// sizes, and named covariates (categorical codes now; perturbation sets, doses
// and hierarchies are further named tensors later). Networks, objectives and
// condition encoders read the covariates by name, so a new covariate kind never
// changes a signature.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/expression_source.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

// Covariate name -> (B,) int64 codes; -1 is "unknown / unconditional".
// A perturbation covariate also carries side tensors (members_key(),
// doses_key()): (B, K) member indices (-1: empty slot) and (B, K) doses. Its
// level code alone says whether it is null; dropping, nulling and grouping
// act on the codes and carry the side tensors along.
using Covariates = std::map<std::string, Tensor>;

inline std::string members_key(const std::string& covariate) { return covariate + "/members"; }
inline std::string doses_key(const std::string& covariate) { return covariate + "/doses"; }
// Covariate names never hold '/' (checked where a model is created).
inline bool is_side_tensor(const std::string& key) { return key.find('/') != std::string::npos; }

// A perturbation covariate's members (and doses) per cell of a dataset.
struct SetColumn {
  int64_t width = 0;
  std::vector<int> members;  // (n_cells x width) member indices, -1: empty slot
  std::vector<float> doses;  // same shape; empty: not dosed
};

// Covariate name -> one code per cell of a whole dataset (-1: none), and
// the perturbation covariates' members.
struct CovariateColumns : std::map<std::string, std::vector<int>> {
  using std::map<std::string, std::vector<int>>::map;
  std::map<std::string, SetColumn> sets;
};

struct CellBatch {
  Tensor expression;    // (B, G) log-normalised, standardised per gene
  Tensor counts;        // (B, G) raw counts; undefined unless asked for
  Tensor library_size;  // (B,) total counts per cell
  Covariates covariates;

  int64_t size() const { return expression.size(0); }
};

// Cells lo, lo + 1, ..., hi - 1: the batches models walk their data in.
std::vector<int> cell_range(int lo, int hi);

// The codes of `cells` in every column, as (B,) int64 tensors on `device`.
Covariates covariates_of(const CovariateColumns& columns, const std::vector<int>& cells,
                         const at::Device& device);

// Every covariate of `like` replaced by -1: the unconditional branch of
// classifier-free guidance.
Covariates null_covariates(const Covariates& like);

// Covariates concatenated along the batch: the two branches of guidance in one call.
Covariates concat_covariates(const Covariates& a, const Covariates& b);

// Standardisation of log-normalised expression: (log1p - mean) / sd per gene.
struct GeneStandardiser {
  Tensor mean, sd;  // (G,) on the model's device
};

// One minibatch of `data`. `with_counts` adds the raw counts (count likelihoods).
CellBatch make_cell_batch(const ExpressionSource& data, const std::vector<int>& cells,
                          const CovariateColumns& columns, const GeneStandardiser& scale,
                          bool with_counts, const at::Device& device);

}  // namespace exprflow
