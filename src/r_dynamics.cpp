// Glue for population flows (exprflow/dynamics.hpp): stateless, each call
// reads the model from the bytes the R object keeps (a small network).
#include "r_glue.hpp"

#include <cmath>

#include "exprflow/dynamics.hpp"

using exprflow::PopulationFlowModel;

namespace {

// An R matrix (cells x dimensions) as row-major floats.
std::vector<float> row_major(const Rcpp::NumericMatrix& cells) {
  const int n = cells.nrow(), d = cells.ncol();
  std::vector<float> out(static_cast<size_t>(n) * d);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) out[static_cast<size_t>(i) * d + j] = static_cast<float>(cells(i, j));
  }
  return out;
}

}  // namespace

// [[Rcpp::export(.cpp_dynamics_default_spec)]]
Rcpp::List cpp_dynamics_default_spec() {
  return exprflow_r::guarded([&]() { return exprflow_r::options_to_list(PopulationFlowModel::default_spec()); });
}

// Trains a new population flow on cells (cells x dimensions) observed at
// `times`, on courses 0 .. C - 1 (`courses`: one per cell, or empty for one
// course); returns the model's bytes, its history and its size.
// [[Rcpp::export(.cpp_dynamics_fit)]]
Rcpp::List cpp_dynamics_fit(Rcpp::NumericMatrix points, Rcpp::NumericVector times, Rcpp::IntegerVector courses,
                            Rcpp::List spec, Rcpp::Function progress) {
  return exprflow_r::guarded([&]() {
    exprflow::TimeCourse course;
    course.n_cells = points.nrow();
    course.dim = points.ncol();
    course.points = row_major(points);
    course.times.assign(times.begin(), times.end());
    course.courses.assign(courses.begin(), courses.end());
    auto model = PopulationFlowModel::create(exprflow_r::options_from_list(spec), course.dim);
    const exprflow::TrainCallbacks callbacks = exprflow_r::progress_callbacks(progress);
    const exprflow::TrainReport report = model->train(course, callbacks);
    return Rcpp::List::create(Rcpp::Named("raw") = exprflow_r::raw_from_bytes(model->to_bytes()),
                              Rcpp::Named("history") = exprflow_r::history_frame(model->history()),
                              Rcpp::Named("spec") = exprflow_r::options_to_list(model->spec()),
                              Rcpp::Named("parameters") = static_cast<double>(model->parameter_count()),
                              Rcpp::Named("interrupted") = report.interrupted);
  });
}

// Each cell's position at each of `times` (the first is where the cells
// are) on course `course` (from 0): an array dimensions x cells x times.
// [[Rcpp::export(.cpp_dynamics_trajectories)]]
Rcpp::NumericVector cpp_dynamics_trajectories(Rcpp::RawVector raw, Rcpp::NumericMatrix cells,
                                              Rcpp::NumericVector times, int steps_per_unit, int course) {
  return exprflow_r::guarded([&]() {
    const auto model = PopulationFlowModel::load_bytes(exprflow_r::bytes_of_raw(raw), "the dynamics model");
    if (cells.ncol() != model->dim()) {
      Rcpp::stop("the cells have %d dimensions; the model %d", cells.ncol(), model->dim());
    }
    const std::vector<double> at(times.begin(), times.end());
    const std::vector<float> path = model->trajectories(row_major(cells), cells.nrow(), at, steps_per_unit, course);
    Rcpp::NumericVector out(path.begin(), path.end());
    out.attr("dim") = Rcpp::IntegerVector::create(model->dim(), cells.nrow(), static_cast<int>(at.size()));
    return out;
  });
}
