// Glue of the model API: create / train / generate / embed / save / load.
// Models cross into R as external pointers owned by R's garbage collector.
#include "r_glue.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "data/expression_source.hpp"
#include "io/model_envelope.hpp"

using exprflow::GenerativeModel;
using ModelPtr = Rcpp::XPtr<GenerativeModel>;

namespace {

GenerativeModel& model_of(SEXP ptr) {
  ModelPtr model(ptr);
  if (model.get() == nullptr) {
    Rcpp::stop("the model's C++ state no longer exists; use the exprflow_model object (it rebuilds "
               "its state from its own bytes) or load_model()");
  }
  return *model;
}

const exprflow::ExpressionSource& source_of(SEXP ptr) {
  Rcpp::XPtr<exprflow::ExpressionSource> source(ptr);
  if (source.get() == nullptr) Rcpp::stop("the data source no longer exists");
  return *source;
}

// R matrices are column-major; a NamedTensor is row-major.
exprflow::Resources resources_from_list(const Rcpp::List& list) {
  exprflow::Resources resources;
  if (list.size() == 0) return resources;
  const Rcpp::CharacterVector names = list.names();
  for (R_xlen_t k = 0; k < list.size(); ++k) {
    const Rcpp::List entry = list[k];
    const Rcpp::NumericMatrix values = entry["values"];
    exprflow::NamedTensor tensor;
    tensor.shape = {values.nrow(), values.ncol()};
    tensor.values.resize(static_cast<size_t>(values.nrow()) * values.ncol());
    for (int i = 0; i < values.nrow(); ++i) {
      for (int j = 0; j < values.ncol(); ++j) tensor.values[static_cast<size_t>(i) * values.ncol() + j] = values(i, j);
    }
    tensor.row_names = Rcpp::as<std::vector<std::string>>(entry["row_names"]);
    tensor.column_names = Rcpp::as<std::vector<std::string>>(entry["column_names"]);
    resources[Rcpp::as<std::string>(names[k])] = std::move(tensor);
  }
  return resources;
}

}  // namespace

// The composition table: one row per architecture.
// [[Rcpp::export(.cpp_architectures)]]
Rcpp::DataFrame cpp_architectures() {
  return exprflow_r::guarded([&]() {
    std::vector<std::string> name, tokenizer, backbone, decoder, space, objective, description, resources;
    for (const exprflow::ArchitectureInfo& row : GenerativeModel::architecture_table()) {
      name.push_back(row.name);
      tokenizer.push_back(row.tokenizer);
      backbone.push_back(row.backbone);
      decoder.push_back(row.decoder);
      space.push_back(row.space);
      objective.push_back(row.objective);
      description.push_back(row.description);
      std::string needs;
      for (const std::string& r : row.resources) needs += (needs.empty() ? "" : ",") + r;
      resources.push_back(needs);
    }
    return Rcpp::DataFrame::create(Rcpp::Named("name") = name, Rcpp::Named("tokenizer") = tokenizer,
                                   Rcpp::Named("backbone") = backbone, Rcpp::Named("decoder") = decoder,
                                   Rcpp::Named("space") = space, Rcpp::Named("objective") = objective,
                                   Rcpp::Named("description") = description, Rcpp::Named("resources") = resources,
                                   Rcpp::Named("stringsAsFactors") = false);
  });
}

// `objective` "" means the architecture's default objective.
// [[Rcpp::export(.cpp_default_spec)]]
Rcpp::List cpp_default_spec(std::string architecture, std::string objective) {
  return exprflow_r::guarded(
      [&]() { return exprflow_r::options_to_list(GenerativeModel::default_spec(architecture, objective)); });
}

// [[Rcpp::export(.cpp_default_train_options)]]
Rcpp::List cpp_default_train_options(std::string architecture) {
  return exprflow_r::guarded(
      [&]() { return exprflow_r::options_to_list(GenerativeModel::default_train_options(architecture)); });
}

// `covariates`: a named list of character vectors, each covariate's levels
// (list(): an unconditional model). `resources`: a named list of
// list(values = numeric matrix, row_names, column_names) (see
// .model_resources() in R/fit.R).
// [[Rcpp::export(.cpp_model_create)]]
SEXP cpp_model_create(Rcpp::List spec, Rcpp::CharacterVector genes, Rcpp::List covariates,
                      Rcpp::List resources) {
  return exprflow_r::guarded([&]() -> SEXP {
    std::vector<exprflow::Covariate> layout;
    const Rcpp::CharacterVector names = covariates.size() ? Rcpp::CharacterVector(covariates.names())
                                                          : Rcpp::CharacterVector();
    for (R_xlen_t i = 0; i < covariates.size(); ++i) {
      exprflow::Covariate covariate{Rcpp::as<std::string>(names[i]), Rcpp::as<std::vector<std::string>>(covariates[i])};
      // A perturbation covariate's levels carry its control level (and,
      // dosed, a typical dose) as attributes.
      const SEXP control = Rf_getAttrib(covariates[i], Rf_install("control"));
      if (control != R_NilValue) {
        covariate.perturbation_set = true;
        covariate.control = Rcpp::as<std::string>(control);
        const SEXP dose_scale = Rf_getAttrib(covariates[i], Rf_install("dose_scale"));
        if (dose_scale != R_NilValue) {
          covariate.dosed = true;
          covariate.dose_scale = Rcpp::as<double>(dose_scale);
        }
      }
      layout.push_back(std::move(covariate));
    }
    auto model = GenerativeModel::create_with_covariates(exprflow_r::options_from_list(spec),
                                                         Rcpp::as<std::vector<std::string>>(genes),
                                                         std::move(layout), resources_from_list(resources));
    return ModelPtr(model.release(), true);
  });
}

namespace {
// `codes`: one integer vector of 0-based levels (-1: unknown) per covariate
// of the model, in its order, n_cells long each.
exprflow::CellCovariates cell_covariates(const GenerativeModel& model, const Rcpp::List& codes, size_t n_cells) {
  const std::vector<exprflow::Covariate>& covariates = model.covariates();
  if (static_cast<size_t>(codes.size()) != covariates.size()) {
    Rcpp::stop("internal: %d covariate code vectors for a model of %d covariates", static_cast<int>(codes.size()),
               static_cast<int>(covariates.size()));
  }
  exprflow::CovariateCodes by_name;
  for (size_t i = 0; i < covariates.size(); ++i) by_name[covariates[i].name] = Rcpp::as<std::vector<int>>(codes[i]);
  if (by_name.empty()) return exprflow::CellCovariates(std::vector<int>(n_cells, -1));
  exprflow::CellCovariates cells(std::move(by_name));
  // Perturbation codes carry combinations the model has no level for
  // ("extra_levels") and doses (a cells x members matrix) as attributes.
  for (size_t i = 0; i < covariates.size(); ++i) {
    const SEXP extra = Rf_getAttrib(codes[i], Rf_install("extra_levels"));
    if (extra != R_NilValue) cells.extra_levels[covariates[i].name] = Rcpp::as<std::vector<std::string>>(extra);
    const SEXP doses = Rf_getAttrib(codes[i], Rf_install("doses"));
    if (doses == R_NilValue) continue;
    const Rcpp::NumericMatrix matrix(doses);
    exprflow::CellDoses cell_doses;
    cell_doses.width = matrix.ncol();
    cell_doses.values.resize(static_cast<size_t>(matrix.nrow()) * matrix.ncol());
    for (int r = 0; r < matrix.nrow(); ++r) {
      for (int c = 0; c < matrix.ncol(); ++c) cell_doses.values[static_cast<size_t>(r) * matrix.ncol() + c] = matrix(r, c);
    }
    cells.doses[covariates[i].name] = std::move(cell_doses);
  }
  return cells;
}
}  // namespace

// Trains in place. `codes`: see cell_covariates(). `progress` is
// called after every step on this (R's main) thread (see
// exprflow_r::progress_callbacks); steps restart at 1 when a stage starts.
// [[Rcpp::export(.cpp_model_train)]]
Rcpp::List cpp_model_train(SEXP model_ptr, SEXP source_ptr, Rcpp::List codes,
                           Rcpp::List options, Rcpp::Function progress) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::ExpressionSource& source = source_of(source_ptr);
    const exprflow::TrainCallbacks callbacks = exprflow_r::progress_callbacks(progress);
    const exprflow::TrainReport report =
        model.train(source, cell_covariates(model, codes, source.n_cells()), exprflow_r::options_from_list(options),
                    callbacks);
    return Rcpp::List::create(Rcpp::Named("interrupted") = report.interrupted,
                              Rcpp::Named("stopped_early") = report.stopped_early,
                              Rcpp::Named("best_epoch") = report.best_epoch,
                              Rcpp::Named("steps") = static_cast<double>(report.steps));
  });
}

// [[Rcpp::export(.cpp_model_generate)]]
Rcpp::List cpp_model_generate(SEXP model_ptr, int n, Rcpp::List codes, Rcpp::List options) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::GeneratedCells cells =
        model.generate(cell_covariates(model, codes, n), exprflow_r::options_from_list(options));
    // Counts only: R log-normalises them (sparse) as it would observed cells.
    Rcpp::IntegerMatrix counts(cells.n_genes, cells.n_cells);
    std::copy(cells.counts.begin(), cells.counts.end(), counts.begin());
    return Rcpp::List::create(Rcpp::Named("counts") = counts,
                              Rcpp::Named("library_size_method") = cells.library_size_method,
                              Rcpp::Named("gene_calibration") = cells.gene_calibration);
  });
}

// Counterfactual counts (genes x cells) of the cells of `source`, moved from
// the codes `from` to the codes `to` (see cell_covariates()).
// [[Rcpp::export(.cpp_model_transfer)]]
Rcpp::List cpp_model_transfer(SEXP model_ptr, SEXP source_ptr, Rcpp::List from, Rcpp::List to,
                              Rcpp::List options) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::ExpressionSource& source = source_of(source_ptr);
    const exprflow::GeneratedCells cells =
        model.transfer(source, cell_covariates(model, from, source.n_cells()),
                       cell_covariates(model, to, source.n_cells()), exprflow_r::options_from_list(options));
    Rcpp::IntegerMatrix counts(cells.n_genes, cells.n_cells);
    std::copy(cells.counts.begin(), cells.counts.end(), counts.begin());
    return Rcpp::List::create(Rcpp::Named("counts") = counts);
  });
}

// Cells x dims embedding matrix.
// [[Rcpp::export(.cpp_model_embed)]]
Rcpp::NumericMatrix cpp_model_embed(SEXP model_ptr, SEXP source_ptr) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::ExpressionSource& source = source_of(source_ptr);
    int dims = 0;
    const std::vector<float> e = model.embed(source, &dims);
    const int n = source.n_cells();
    Rcpp::NumericMatrix out(n, dims);
    for (int c = 0; c < n; ++c) {
      for (int d = 0; d < dims; ++d) out(c, d) = e[static_cast<size_t>(c) * dims + d];
    }
    return out;
  });
}

// Latent codes (cells x dims, as .cpp_model_embed gives them) decoded under
// `covariate_codes`: log-normalised expression, genes x cells.
// [[Rcpp::export(.cpp_model_decode)]]
Rcpp::NumericMatrix cpp_model_decode(SEXP model_ptr, Rcpp::NumericMatrix latent, Rcpp::List covariate_codes,
                                     Rcpp::List options) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const int n = latent.nrow(), dims = latent.ncol();
    std::vector<float> codes(static_cast<size_t>(n) * dims);  // row-major
    for (int c = 0; c < n; ++c) {
      for (int d = 0; d < dims; ++d) codes[static_cast<size_t>(c) * dims + d] = static_cast<float>(latent(c, d));
    }
    const std::vector<float> decoded = model.decode(codes, dims, cell_covariates(model, covariate_codes, n),
                                                    exprflow_r::options_from_list(options));
    const int genes = n > 0 ? static_cast<int>(decoded.size() / n) : 0;
    Rcpp::NumericMatrix out(genes, n);
    std::copy(decoded.begin(), decoded.end(), out.begin());
    return out;
  });
}

// Reconstruction of observed cells: logcounts and expected counts (genes x
// cells) and the per-cell NB log-likelihood of the observed counts (latent
// models: also the marginal log-likelihood).
// [[Rcpp::export(.cpp_model_reconstruct)]]
Rcpp::List cpp_model_reconstruct(SEXP model_ptr, SEXP source_ptr, Rcpp::List codes, Rcpp::List options) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::ExpressionSource& source = source_of(source_ptr);
    const exprflow::ReconstructedCells cells =
        model.reconstruct(source, cell_covariates(model, codes, source.n_cells()),
                          exprflow_r::options_from_list(options));
    Rcpp::NumericMatrix logcounts(cells.n_genes, cells.n_cells), expected(cells.n_genes, cells.n_cells);
    std::copy(cells.logcounts.begin(), cells.logcounts.end(), logcounts.begin());
    std::copy(cells.expected_counts.begin(), cells.expected_counts.end(), expected.begin());
    Rcpp::List out = Rcpp::List::create(Rcpp::Named("logcounts") = logcounts, Rcpp::Named("expected_counts") = expected,
                                        Rcpp::Named("log_likelihood") = Rcpp::wrap(cells.log_likelihood));
    if (!cells.marginal_log_likelihood.empty()) {
      out["marginal_log_likelihood"] = Rcpp::wrap(cells.marginal_log_likelihood);
    }
    return out;
  });
}

namespace {
// A row-major (rows x cols) float buffer as an R matrix.
Rcpp::NumericMatrix row_major_matrix(const std::vector<float>& v, int rows, int cols) {
  Rcpp::NumericMatrix out(rows, cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) out(r, c) = v[static_cast<size_t>(r) * cols + c];
  }
  return out;
}
}  // namespace

// Cells x tokens: the norm of each encoder token.
// [[Rcpp::export(.cpp_model_token_activations)]]
Rcpp::NumericMatrix cpp_model_token_activations(SEXP model_ptr, SEXP source_ptr) {
  return exprflow_r::guarded([&]() {
    const exprflow::ExpressionSource& source = source_of(source_ptr);
    int n_tokens = 0;
    const std::vector<float> a = model_of(model_ptr).token_activations(source, &n_tokens);
    return row_major_matrix(a, source.n_cells(), n_tokens);
  });
}

// Tokens x genes loadings; source_ptr may be NULL for method "weights".
// [[Rcpp::export(.cpp_model_token_loadings)]]
Rcpp::NumericMatrix cpp_model_token_loadings(SEXP model_ptr, std::string method, SEXP source_ptr) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    const exprflow::ExpressionSource* source = Rf_isNull(source_ptr) ? nullptr : &source_of(source_ptr);
    int n_tokens = 0;
    const std::vector<float> l = model.token_gene_loadings(method, source, &n_tokens);
    return row_major_matrix(l, n_tokens, static_cast<int>(model.genes().size()));
  });
}

// A new model: the model with more levels (`levels`: per covariate, in the
// model's order, its levels followed by new ones); see
// GenerativeModel::with_levels().
// [[Rcpp::export(.cpp_model_with_levels)]]
SEXP cpp_model_with_levels(SEXP model_ptr, Rcpp::List levels) {
  return exprflow_r::guarded([&]() -> SEXP {
    const GenerativeModel& model = model_of(model_ptr);
    std::vector<exprflow::Covariate> grown = model.covariates();
    if (static_cast<size_t>(levels.size()) != grown.size()) Rcpp::stop("internal: one level vector per covariate");
    for (size_t i = 0; i < grown.size(); ++i) grown[i].levels = Rcpp::as<std::vector<std::string>>(levels[i]);
    return ModelPtr(model.with_levels(grown).release(), true);
  });
}

// The model file's bytes (checksummed, with the format version), which the R
// object keeps so that a copy restored by readRDS() is always this model.
// [[Rcpp::export(.cpp_model_to_raw)]]
Rcpp::RawVector cpp_model_to_raw(SEXP model_ptr) {
  return exprflow_r::guarded([&]() {
    return exprflow_r::raw_from_bytes(model_of(model_ptr).to_bytes());
  });
}

// A model from model file bytes (an object's own, or a file's read by R);
// `source` names them in errors.
// [[Rcpp::export(.cpp_model_from_raw)]]
SEXP cpp_model_from_raw(Rcpp::RawVector bytes, std::string source, bool trust_legacy) {
  return exprflow_r::guarded([&]() -> SEXP {
    return ModelPtr(GenerativeModel::load_bytes(exprflow_r::bytes_of_raw(bytes), source, trust_legacy).release(), true);
  });
}

// The model a checkpoint file holds (as it was when the checkpoint was
// written), to be trained on with the train option resume = `path`.
// [[Rcpp::export(.cpp_model_from_checkpoint)]]
SEXP cpp_model_from_checkpoint(std::string path) {
  return exprflow_r::guarded([&]() -> SEXP {
    return ModelPtr(GenerativeModel::load_checkpoint(path).release(), true);
  });
}

// Whether this build can train across processes (Gloo).
// [[Rcpp::export(.cpp_data_parallel_available)]]
bool cpp_data_parallel_available() { return exprflow::data_parallel_available(); }

// Where a checkpointed run stood.
// [[Rcpp::export(.cpp_checkpoint_info)]]
Rcpp::List cpp_checkpoint_info(std::string path) {
  return exprflow_r::guarded([&]() {
    const exprflow::CheckpointInfo info = GenerativeModel::checkpoint_info(path);
    return Rcpp::List::create(Rcpp::Named("stage") = info.stage,
                              Rcpp::Named("epoch") = static_cast<double>(info.epoch),
                              Rcpp::Named("batch") = static_cast<double>(info.batch),
                              Rcpp::Named("steps") = static_cast<double>(info.steps),
                              Rcpp::Named("epochs") = static_cast<double>(info.epochs));
  });
}

// Model file bytes written to `path` atomically (a temporary file renamed over it).
// [[Rcpp::export(.cpp_write_model_raw)]]
void cpp_write_model_raw(Rcpp::RawVector bytes, std::string path) {
  exprflow_r::guarded([&]() {
    exprflow::write_file_atomically(path, exprflow_r::bytes_of_raw(bytes), "model");
  });
}

namespace {
// Each covariate's levels, named by the covariate.
Rcpp::List covariate_list(const std::vector<exprflow::Covariate>& covariates) {
  Rcpp::List out(covariates.size());
  Rcpp::CharacterVector names(covariates.size());
  for (size_t i = 0; i < covariates.size(); ++i) {
    out[i] = Rcpp::wrap(covariates[i].levels);
    names[i] = covariates[i].name;
  }
  out.attr("names") = names;
  return out;
}
}  // namespace

// [[Rcpp::export(.cpp_model_info)]]
Rcpp::List cpp_model_info(SEXP model_ptr) {
  return exprflow_r::guarded([&]() {
    GenerativeModel& model = model_of(model_ptr);
    return Rcpp::List::create(Rcpp::Named("spec") = exprflow_r::options_to_list(model.spec()),
                              Rcpp::Named("genes") = Rcpp::wrap(model.genes()),
                              Rcpp::Named("covariates") = covariate_list(model.covariates()),
                              Rcpp::Named("history") = exprflow_r::history_frame(model.history()),
                              Rcpp::Named("parameters") = static_cast<double>(model.parameter_count()),
                              Rcpp::Named("trained") = model.trained(),
                              Rcpp::Named("device") = model.device(),
                              Rcpp::Named("default_sampler") = model.default_sampler(),
                              Rcpp::Named("token_names") = Rcpp::wrap(model.token_names()));
  });
}

// [[Rcpp::export(.cpp_pointer_alive)]]
bool cpp_pointer_alive(SEXP ptr) {
  return TYPEOF(ptr) == EXTPTRSXP && R_ExternalPtrAddr(ptr) != nullptr;
}

// [[Rcpp::export(.cpp_model_annotations)]]
Rcpp::List cpp_model_annotations(SEXP model_ptr) {
  return exprflow_r::guarded([&]() { return exprflow_r::options_to_list(model_of(model_ptr).annotations()); });
}

// [[Rcpp::export(.cpp_model_annotate)]]
void cpp_model_annotate(SEXP model_ptr, Rcpp::List values) {
  exprflow_r::guarded([&]() {
    exprflow::Options& annotations = model_of(model_ptr).annotations();
    annotations = annotations.merged(exprflow_r::options_from_list(values), /*known_only=*/false);
  });
}

// The last LoRA fine-tuning's adapter alone, as an adapter file's bytes.
// [[Rcpp::export(.cpp_model_adapter_raw)]]
Rcpp::RawVector cpp_model_adapter_raw(SEXP model_ptr) {
  return exprflow_r::guarded([&]() { return exprflow_r::raw_from_bytes(model_of(model_ptr).adapter_bytes()); });
}

// Merges an adapter file's bytes into the model (`source` names them in errors).
// [[Rcpp::export(.cpp_model_apply_adapter)]]
void cpp_model_apply_adapter(SEXP model_ptr, Rcpp::RawVector bytes, std::string source) {
  exprflow_r::guarded([&]() { model_of(model_ptr).apply_adapter(exprflow_r::bytes_of_raw(bytes), source); });
}
