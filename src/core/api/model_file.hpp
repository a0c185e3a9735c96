// The file of a generative model (gene-space or latent): one tensor bundle
// (io/tensor_bundle.hpp) with a meta JSON object. What every model kind writes the same way lives
// here -- the format name and version, the common meta fields, resources,
// library-size pools -- so GenerativeModel::load() can open any file and hand
// it to the class its architecture names.
#pragma once

#include <string>
#include <vector>

#include "data/covariate_centroids.hpp"
#include "data/library_sizes.hpp"
#include "decode/gene_share_calibration.hpp"
#include "exprflow/api.hpp"
#include "io/json.hpp"
#include "io/tensor_bundle.hpp"

namespace exprflow {

// The meta fields every generative model file holds: format, version, spec,
// genes, covariates, trained, annotations, history, resources.
Json generative_model_meta(const GenerativeModel& model);
// The covariates of a model file's meta (files written before several
// covariates hold "condition_levels": one covariate "condition", or none).
std::vector<Covariate> read_covariates(const Json& meta);
// Opens the bytes of a model file (`path` names them in errors) and checks
// they hold a generative model of this format version; files of earlier
// exprflow versions only with `trust_legacy` (io/model_archive.hpp).
TensorBundle open_generative_model_bytes(std::string_view bytes, const std::string& path, bool trust_legacy);

void write_resources(TensorBundle& bundle, const Resources& resources);
Resources read_resources(const TensorBundle& bundle);

// Every training cell's library size with its covariate codes. Reading
// needs `pools` made for the model's covariate count; it also reads the
// per-level pools files of one condition were written with.
void write_library_sizes(TensorBundle& bundle, const LibrarySizePools& pools);
void read_library_sizes(const TensorBundle& bundle, LibrarySizePools& pools);

// A gene-space model's gene share calibration (gene_share_codes,
// gene_share_target_sum, gene_share_target_cells, gene_share_factors);
// nothing when it has no targets. Files written before it have none, and
// their models generate uncalibrated. Reading needs `calibration` made for
// the model's genes and `n_covariates` codes per combination.
void write_gene_calibration(TensorBundle& bundle, const GeneShareCalibration& calibration);
void read_gene_calibration(const TensorBundle& bundle, GeneShareCalibration& calibration, int n_covariates);

// A latent model's mean codes per combination of levels (centroid_codes,
// centroid_means, centroid_counts); nothing when empty. Files written before
// them leave `centroids` empty.
// Stored as <prefix>_codes, <prefix>_means and <prefix>_counts; nothing
// when empty, and read back empty when the file has none.
void write_centroids(TensorBundle& bundle, const CovariateCentroids& centroids,
                     const std::string& prefix = "centroid");
void read_centroids(const TensorBundle& bundle, CovariateCentroids& centroids, const std::string& prefix = "centroid");

}  // namespace exprflow
