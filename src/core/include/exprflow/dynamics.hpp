// Population flows: how a population of cells moves between observed time
// points (issue 12's dynamics model). Torch-free, for the R glue.
//
// Cells are points in a space the caller chooses (e.g. principal components of
// log expression). A velocity field v(x, t) is trained on paths through
// chains of cells coupled by optimal transport across consecutive time points
// (cubic Hermite paths or natural cubic splines through each chain, or
// straight segments), and
// transport() integrates it to move cells from one time to another: inside
// the observed range (interpolation, including times held out of training)
// or beyond it (forecast).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exprflow/api.hpp"  // TrainReport, TrainCallbacks
#include "exprflow/options.hpp"

namespace exprflow {

struct TimeCourse {
  int n_cells = 0;
  int dim = 0;
  std::vector<float> points;  // n_cells x dim, row-major, finite
  std::vector<double> times;  // one per cell; at least two distinct (in one course at least)
  // The course each cell belongs to, 0 .. C - 1 (e.g. a condition or a donor
  // observed over time): the courses share one field, which reads which
  // course a cell is on. Empty: one course. A course observed at one time
  // only has no path to learn from; it can still be moved along the field
  // (by what the other courses taught it, and by its population's state
  // with state = "ssm").
  std::vector<int> courses;
};

class PopulationFlowModel {
 public:
  virtual ~PopulationFlowModel() = default;

  // Settings and their defaults: hidden, n_layers, dropout, path ("hermite" |
  // "spline" | "linear"), state ("time" | "ssm"), state_size,
  // course_dropout, coupling_epsilon, path_noise, batch_size, steps,
  // learning_rate, weight_decay, seed.
  static Options default_spec();
  // `spec`: overrides of the defaults (unknown keys are an error); dim: the
  // cells' dimension.
  static std::unique_ptr<PopulationFlowModel> create(const Options& spec, int dim);
  static std::unique_ptr<PopulationFlowModel> load_bytes(std::string_view bytes, const std::string& source);

  virtual TrainReport train(const TimeCourse& data, const TrainCallbacks& callbacks) = 0;
  // n cells (n x dim, row-major) of course `course` at time `from` moved
  // along the field to time `to` (either direction) in `steps` Heun steps.
  // Outside the observed times the field is read at the nearer end (it was
  // trained inside only).
  virtual std::vector<float> transport(const std::vector<float>& cells, int n, double from, double to, int steps,
                                       int course) const = 0;
  // The path of each cell at each of `times` (the first is where the cells
  // are): times.size() x n x dim, row-major.
  virtual std::vector<float> trajectories(const std::vector<float>& cells, int n, const std::vector<double>& times,
                                          int steps_per_unit, int course) const = 0;

  virtual std::string to_bytes() const = 0;
  virtual const Options& spec() const = 0;
  virtual int dim() const = 0;
  // Every time observed in any course, increasing.
  virtual const std::vector<double>& observed_times() const = 0;
  virtual int n_courses() const = 0;
  // The times course `course` was observed at, increasing.
  virtual const std::vector<double>& course_times(int course) const = 0;
  virtual const std::vector<EpochRecord>& history() const = 0;
  virtual long parameter_count() const = 0;
};

}  // namespace exprflow
