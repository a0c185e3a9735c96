// Glue of the connectivity API: architectures, create / train / predict /
// attention maps / save / load / info. Models cross into R as external
// pointers owned by R's garbage collector. R matrices are column-major and
// region indices 1-based; the core takes row-major data and 0-based indices.
#include "r_glue.hpp"

#include <cmath>

#include "exprflow/connectivity.hpp"

using exprflow::ConnectivityModel;
using ConnectivityPtr = Rcpp::XPtr<ConnectivityModel>;

namespace {

ConnectivityModel& model_of(SEXP ptr) {
  if (TYPEOF(ptr) != EXTPTRSXP) Rcpp::stop("not a connectivity model pointer");
  ConnectivityPtr model(ptr);
  if (model.get() == nullptr) {
    Rcpp::stop("the connectivity model's C++ state no longer exists (e.g. after saveRDS/readRDS); "
               "reload it from its file");
  }
  return *model;
}

// expression: regions x genes; coords: regions x 3, or 0 rows (no coordinates).
exprflow::RegionData region_data(const Rcpp::NumericMatrix& expression, const Rcpp::NumericMatrix& coords) {
  exprflow::RegionData d;
  d.n_regions = expression.nrow();
  d.n_genes = expression.ncol();
  d.expression.resize(static_cast<size_t>(d.n_regions) * d.n_genes);
  for (int r = 0; r < d.n_regions; ++r) {
    for (int g = 0; g < d.n_genes; ++g) d.expression[static_cast<size_t>(r) * d.n_genes + g] = expression(r, g);
  }
  if (coords.nrow() > 0) {
    if (coords.ncol() != 3) Rcpp::stop("coords must have 3 columns (x, y, z), got %d", coords.ncol());
    if (coords.nrow() != d.n_regions) {
      Rcpp::stop("coords must have one row per region of expression (%d), got %d", d.n_regions, coords.nrow());
    }
    d.coords.resize(static_cast<size_t>(d.n_regions) * 3);
    for (int r = 0; r < d.n_regions; ++r) {
      for (int a = 0; a < 3; ++a) d.coords[r * 3 + a] = coords(r, a);
    }
  }
  return d;
}

// 1-based R region indices -> 0-based.
std::vector<int> zero_based(const Rcpp::IntegerVector& index, const char* name) {
  std::vector<int> out(index.size());
  for (R_xlen_t k = 0; k < index.size(); ++k) {
    if (index[k] == NA_INTEGER) Rcpp::stop("%s must not contain NA (element %d)", name, static_cast<int>(k + 1));
    out[k] = index[k] - 1;
  }
  return out;
}

exprflow::RegionPairs region_pairs(const Rcpp::IntegerVector& i, const Rcpp::IntegerVector& j,
                                   const Rcpp::NumericVector& y, const char* what) {
  exprflow::RegionPairs p;
  const std::string prefix(what);
  p.i = zero_based(i, (prefix + "_i").c_str());
  p.j = zero_based(j, (prefix + "_j").c_str());
  p.target.assign(y.begin(), y.end());
  return p;
}

}  // namespace

// [[Rcpp::export(.cpp_connectivity_architectures)]]
Rcpp::CharacterVector cpp_connectivity_architectures() {
  return exprflow_r::guarded([&]() { return Rcpp::wrap(ConnectivityModel::architectures()); });
}

// [[Rcpp::export(.cpp_connectivity_default_spec)]]
Rcpp::List cpp_connectivity_default_spec(std::string architecture) {
  return exprflow_r::guarded(
      [&]() { return exprflow_r::options_to_list(ConnectivityModel::default_spec(architecture)); });
}

// [[Rcpp::export(.cpp_connectivity_default_train_options)]]
Rcpp::List cpp_connectivity_default_train_options(std::string architecture) {
  return exprflow_r::guarded(
      [&]() { return exprflow_r::options_to_list(ConnectivityModel::default_train_options(architecture)); });
}

// gene_embedding: genes x dim; a row that is all NA means "no vector, learn one".
// [[Rcpp::export(.cpp_connectivity_create)]]
SEXP cpp_connectivity_create(Rcpp::List spec, Rcpp::NumericMatrix gene_embedding) {
  return exprflow_r::guarded([&]() -> SEXP {
    exprflow::GeneEmbedding genes;
    genes.n_genes = gene_embedding.nrow();
    genes.dim = gene_embedding.ncol();
    genes.values.resize(static_cast<size_t>(genes.n_genes) * genes.dim);
    genes.has_vector.assign(genes.n_genes, 1);
    for (int g = 0; g < genes.n_genes; ++g) {
      int missing = 0;
      for (int d = 0; d < genes.dim; ++d) {
        const double v = gene_embedding(g, d);
        if (ISNAN(v)) ++missing;
        genes.values[static_cast<size_t>(g) * genes.dim + d] = static_cast<float>(v);
      }
      if (missing == genes.dim) {
        genes.has_vector[g] = 0;
      } else if (missing > 0) {
        Rcpp::stop("gene_embedding row %d has %d NA values out of %d: a row is either complete or all NA "
                   "(no vector)", g + 1, missing, genes.dim);
      }
    }
    auto model = ConnectivityModel::create(exprflow_r::options_from_list(spec), genes);
    return ConnectivityPtr(model.release(), true);
  });
}

// Trains in place. `progress` is called after every step on this (R's main)
// thread (see exprflow_r::progress_callbacks); returning FALSE stops training cleanly.
// [[Rcpp::export(.cpp_connectivity_train)]]
Rcpp::List cpp_connectivity_train(SEXP ptr, Rcpp::NumericMatrix expression, Rcpp::NumericMatrix coords,
                                  Rcpp::IntegerVector train_i, Rcpp::IntegerVector train_j,
                                  Rcpp::NumericVector train_y, Rcpp::IntegerVector val_i,
                                  Rcpp::IntegerVector val_j, Rcpp::NumericVector val_y, Rcpp::List options,
                                  Rcpp::Function progress) {
  return exprflow_r::guarded([&]() {
    ConnectivityModel& model = model_of(ptr);
    const exprflow::RegionData data = region_data(expression, coords);
    const exprflow::RegionPairs train = region_pairs(train_i, train_j, train_y, "train");
    const exprflow::RegionPairs validation = region_pairs(val_i, val_j, val_y, "val");
    const exprflow::TrainCallbacks callbacks = exprflow_r::progress_callbacks(progress);
    const size_t before = model.history().size();
    const exprflow::TrainReport report =
        model.train(data, train, validation, exprflow_r::options_from_list(options), callbacks);
    return Rcpp::List::create(Rcpp::Named("history") = exprflow_r::history_frame(model.history(), before),
                              Rcpp::Named("interrupted") = report.interrupted,
                              Rcpp::Named("stopped_early") = report.stopped_early,
                              Rcpp::Named("best_epoch") = report.best_epoch,
                              Rcpp::Named("steps") = static_cast<double>(report.steps));
  });
}

// [[Rcpp::export(.cpp_connectivity_predict)]]
Rcpp::NumericVector cpp_connectivity_predict(SEXP ptr, Rcpp::NumericMatrix expression, Rcpp::NumericMatrix coords,
                                             Rcpp::IntegerVector i, Rcpp::IntegerVector j, int batch_size) {
  return exprflow_r::guarded([&]() {
    ConnectivityModel& model = model_of(ptr);
    const exprflow::RegionData data = region_data(expression, coords);
    exprflow::RegionPairs pairs;
    pairs.i = zero_based(i, "i");
    pairs.j = zero_based(j, "j");
    const std::vector<float> y = model.predict(data, pairs, batch_size);
    return Rcpp::NumericVector(y.begin(), y.end());
  });
}

// Head-averaged attention of layer `layer` (1-based) for the pair (i, j):
// queries x keys.
// [[Rcpp::export(.cpp_connectivity_attention)]]
Rcpp::NumericMatrix cpp_connectivity_attention(SEXP ptr, Rcpp::NumericMatrix expression, Rcpp::NumericMatrix coords,
                                               int i, int j, int layer) {
  return exprflow_r::guarded([&]() {
    ConnectivityModel& model = model_of(ptr);
    // No n_layers: a model without attention (bilinear), which says so itself.
    const long n_layers = model.spec().integer("n_layers", 0);
    if (n_layers > 0 && (layer == NA_INTEGER || layer < 1 || layer > n_layers)) {
      Rcpp::stop("layer must be between 1 and %d (the model's n_layers)", static_cast<int>(n_layers));
    }
    if (i == NA_INTEGER || j == NA_INTEGER) Rcpp::stop("i and j must not be NA");
    const exprflow::RegionData data = region_data(expression, coords);
    int rows = 0, cols = 0;
    const std::vector<float> w = model.attention_map(data, i - 1, j - 1, layer - 1, &rows, &cols);
    Rcpp::NumericMatrix out(rows, cols);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) out(r, c) = w[static_cast<size_t>(r) * cols + c];
    }
    return out;
  });
}

// The model's file bytes: what the R object keeps and save_connectivity() stores.
// [[Rcpp::export(.cpp_connectivity_to_raw)]]
Rcpp::RawVector cpp_connectivity_to_raw(SEXP ptr) {
  return exprflow_r::guarded([&]() { return exprflow_r::raw_from_bytes(model_of(ptr).to_bytes()); });
}

// A model from its file bytes; `source` names them in errors.
// [[Rcpp::export(.cpp_connectivity_from_raw)]]
SEXP cpp_connectivity_from_raw(Rcpp::RawVector bytes, std::string source, bool trust_legacy) {
  return exprflow_r::guarded([&]() -> SEXP {
    return ConnectivityPtr(ConnectivityModel::load_bytes(exprflow_r::bytes_of_raw(bytes), source, trust_legacy).release(), true);
  });
}

// [[Rcpp::export(.cpp_connectivity_info)]]
Rcpp::List cpp_connectivity_info(SEXP ptr) {
  return exprflow_r::guarded([&]() {
    ConnectivityModel& model = model_of(ptr);
    return Rcpp::List::create(Rcpp::Named("spec") = exprflow_r::options_to_list(model.spec()),
                              Rcpp::Named("parameters") = static_cast<double>(model.parameter_count()),
                              Rcpp::Named("history") = exprflow_r::history_frame(model.history()));
  });
}
