// Glue of HDF5 files (data/hdf5_source, data/h5ad_writer): a streamed source
// for 10x .h5 / .h5ad paths, its cell names and obs columns for R, and
// .h5ad files written from R's sparse counts.
#include "r_glue.hpp"

#include "data/gene_selection.hpp"
#include "data/h5ad_writer.hpp"
#include "data/hdf5_source.hpp"

using exprflow::ExpressionSource;
using exprflow::Hdf5ExpressionSource;

namespace {

// The file behind a source: the source itself, or the one a gene selection reads.
const Hdf5ExpressionSource& hdf5_source(SEXP source_ptr) {
  Rcpp::XPtr<ExpressionSource> source(source_ptr);
  if (source.get() == nullptr) Rcpp::stop("the data source no longer exists");
  const ExpressionSource* inner = source.get();
  if (const auto* selection = dynamic_cast<const exprflow::GeneSelectionSource*>(inner)) inner = &selection->inner();
  const auto* file = dynamic_cast<const Hdf5ExpressionSource*>(inner);
  if (file == nullptr) Rcpp::stop("the data source is not an HDF5 file");
  return *file;
}

// list(source, genes, n_cells, format) of a file, shown through `genes`
// (in their order) when they are given and differ from the file's.
Rcpp::List source_list(std::unique_ptr<Hdf5ExpressionSource> file, const std::vector<std::string>& genes) {
  const int n_cells = file->n_cells();
  const std::string format = file->format();
  std::unique_ptr<ExpressionSource> source = std::move(file);
  if (!genes.empty() && genes != source->genes()) {
    source = std::make_unique<exprflow::GeneSelectionSource>(std::move(source), genes);
  }
  Rcpp::CharacterVector names = Rcpp::wrap(source->genes());
  return Rcpp::List::create(Rcpp::Named("source") = Rcpp::XPtr<ExpressionSource>(source.release(), true),
                            Rcpp::Named("genes") = names, Rcpp::Named("n_cells") = n_cells,
                            Rcpp::Named("format") = format);
}

}  // namespace

// A streamed source of the counts in `path` (X, or layers/<layer> of an
// .h5ad) through `genes` (character(0): the file's genes); a CSC matrix's
// CSR copy goes to the folder `scratch`.
// [[Rcpp::export(.cpp_source_from_hdf5)]]
Rcpp::List cpp_source_from_hdf5(std::string path, std::string layer, std::vector<std::string> genes,
                                std::string scratch) {
  return exprflow_r::guarded([&]() { return source_list(Hdf5ExpressionSource::open(path, layer, scratch), genes); });
}

// A streamed source of the HDF5 object `name` in `path` (an HDF5Array's
// dataset, a TENxMatrix's group) whose genes are `file_genes`, shown
// through `genes` (character(0): all of them); as above for `scratch`.
// [[Rcpp::export(.cpp_source_from_hdf5_matrix)]]
Rcpp::List cpp_source_from_hdf5_matrix(std::string path, std::string name, std::vector<std::string> file_genes,
                                       std::vector<std::string> genes, std::string scratch) {
  return exprflow_r::guarded([&]() {
    return source_list(Hdf5ExpressionSource::open_matrix(path, name, std::move(file_genes), scratch), genes);
  });
}

// [[Rcpp::export(.cpp_hdf5_cell_names)]]
Rcpp::CharacterVector cpp_hdf5_cell_names(SEXP source_ptr) {
  return exprflow_r::guarded([&]() { return Rcpp::wrap(hdf5_source(source_ptr).cell_names()); });
}

// The obs columns as R vectors (numbers, logicals, factors with NA for
// missing categories); columns of unsupported encodings are NULL.
// [[Rcpp::export(.cpp_hdf5_obs)]]
Rcpp::List cpp_hdf5_obs(SEXP source_ptr) {
  return exprflow_r::guarded([&]() {
    const std::vector<exprflow::ObsColumn> columns = hdf5_source(source_ptr).obs_columns();
    Rcpp::List out(columns.size());
    Rcpp::CharacterVector names(columns.size());
    for (size_t k = 0; k < columns.size(); ++k) {
      const exprflow::ObsColumn& c = columns[k];
      names[k] = c.name;
      if (!c.supported) {
        out[k] = R_NilValue;
      } else if (c.logical) {
        Rcpp::LogicalVector v(c.numbers.size());
        for (size_t i = 0; i < c.numbers.size(); ++i) v[i] = c.numbers[i] != 0;
        out[k] = v;
      } else if (c.numeric) {
        out[k] = Rcpp::wrap(c.numbers);
      } else {
        Rcpp::CharacterVector v(c.labels.size());
        for (size_t i = 0; i < c.labels.size(); ++i) {
          v[i] = c.missing[i] ? Rcpp::String(NA_STRING) : Rcpp::String(c.labels[i]);
        }
        out[k] = v;
      }
    }
    out.attr("names") = names;
    return out;
  });
}

// Writes counts given as CSC genes x cells (a dgCMatrix: p, i, x) with obs
// columns: a list of numeric vectors, or list(levels, codes) for labels
// (codes 0-based, -1 missing).
// [[Rcpp::export(.cpp_write_h5ad)]]
void cpp_write_h5ad(std::string path, Rcpp::CharacterVector genes, Rcpp::CharacterVector cells,
                    Rcpp::IntegerVector p, Rcpp::IntegerVector i, Rcpp::NumericVector x, Rcpp::List obs,
                    int block_cells) {
  exprflow_r::guarded([&]() {
    exprflow::H5adContent content;
    content.genes = Rcpp::as<std::vector<std::string>>(genes);
    content.cells = Rcpp::as<std::vector<std::string>>(cells);
    content.indptr.assign(p.begin(), p.end());
    content.indices.assign(i.begin(), i.end());
    content.data.assign(x.begin(), x.end());
    const Rcpp::CharacterVector names = obs.names();
    for (R_xlen_t k = 0; k < obs.size(); ++k) {
      exprflow::H5adColumn column;
      column.name = Rcpp::as<std::string>(names[k]);
      if (Rcpp::is<Rcpp::NumericVector>(obs[k])) {
        column.numeric = true;
        column.numbers = Rcpp::as<std::vector<double>>(obs[k]);
      } else {
        const Rcpp::List labels = obs[k];
        column.categories = Rcpp::as<std::vector<std::string>>(labels["levels"]);
        column.codes = Rcpp::as<std::vector<int32_t>>(labels["codes"]);
      }
      content.obs.push_back(std::move(column));
    }
    exprflow::write_h5ad(path, content, block_cells);
  });
}
