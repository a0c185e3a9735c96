// Glue of the data stage: R matrices -> C++ expression sources (no
// densification of sparse input), and minibatches back for inspection/tests.
#include "r_glue.hpp"

#include "data/expression_source.hpp"
#include "data/nmf_modules.hpp"

using exprflow::ExpressionSource;
using SourcePtr = Rcpp::XPtr<ExpressionSource>;

// [[Rcpp::export(.cpp_source_from_csc)]]
SEXP cpp_source_from_csc(Rcpp::CharacterVector genes, int n_cells, Rcpp::IntegerVector p,
                         Rcpp::IntegerVector i, Rcpp::NumericVector x) {
  return exprflow_r::guarded([&]() -> SEXP {
    if (p.size() != n_cells + 1) Rcpp::stop("malformed sparse matrix: column pointers do not match the cells");
    if (i.size() != x.size() || (n_cells > 0 && p[n_cells] > x.size())) {
      Rcpp::stop("malformed sparse matrix: row indices and values differ in length");
    }
    auto source = new exprflow::CscExpressionSource(Rcpp::as<std::vector<std::string>>(genes), n_cells,
                                                    p.begin(), i.begin(), x.begin());
    return SourcePtr(source, true);
  });
}

// [[Rcpp::export(.cpp_source_from_dense)]]
SEXP cpp_source_from_dense(Rcpp::CharacterVector genes, Rcpp::NumericMatrix x) {
  return exprflow_r::guarded([&]() -> SEXP {
    auto source = new exprflow::DenseExpressionSource(Rcpp::as<std::vector<std::string>>(genes),
                                                      x.ncol(), x.begin());
    return SourcePtr(source, true);
  });
}

// Minibatch of the given 1-based cells: genes x cells, raw counts or log-normalised.
// [[Rcpp::export(.cpp_source_minibatch)]]
Rcpp::NumericMatrix cpp_source_minibatch(SEXP source_ptr, Rcpp::IntegerVector cells, bool log_normalised) {
  return exprflow_r::guarded([&]() {
    SourcePtr source(source_ptr);
    if (source.get() == nullptr) Rcpp::stop("the data source no longer exists");
    std::vector<int> index(cells.size());
    for (R_xlen_t k = 0; k < cells.size(); ++k) index[k] = cells[k] - 1;
    const int G = source->n_genes();
    std::vector<float> buffer(static_cast<size_t>(G) * index.size());
    if (log_normalised) {
      source->fill_log_normalised(index, buffer.data());
    } else {
      source->fill_counts(index, buffer.data());
    }
    Rcpp::NumericMatrix out(G, static_cast<int>(index.size()));
    std::copy(buffer.begin(), buffer.end(), out.begin());  // row-major cells x G == column-major G x cells
    return out;
  });
}

// [[Rcpp::export(.cpp_source_library_sizes)]]
Rcpp::NumericVector cpp_source_library_sizes(SEXP source_ptr) {
  return exprflow_r::guarded([&]() {
    SourcePtr source(source_ptr);
    if (source.get() == nullptr) Rcpp::stop("the data source no longer exists");
    return Rcpp::wrap(source->library_sizes());
  });
}

// Gene modules by NMF of the source's log-normalised cells, as the
// "gene_sets" resource: list(values = modules x genes 0/1 matrix, row_names,
// column_names).
// [[Rcpp::export(.cpp_nmf_gene_modules)]]
Rcpp::List cpp_nmf_gene_modules(SEXP source_ptr, int n_modules, int seed) {
  return exprflow_r::guarded([&]() {
    SourcePtr source(source_ptr);
    if (source.get() == nullptr) Rcpp::stop("the data source no longer exists");
    exprflow::NmfSettings settings;
    settings.modules = n_modules;
    settings.seed = static_cast<uint64_t>(seed);
    const exprflow::NamedTensor modules = exprflow::nmf_gene_modules(*source, settings);
    const int rows = static_cast<int>(modules.shape[0]), cols = static_cast<int>(modules.shape[1]);
    Rcpp::NumericMatrix values(rows, cols);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) values(r, c) = modules.values[static_cast<size_t>(r) * cols + c];
    }
    return Rcpp::List::create(Rcpp::Named("values") = values, Rcpp::Named("row_names") = modules.row_names,
                              Rcpp::Named("column_names") = modules.column_names);
  });
}
