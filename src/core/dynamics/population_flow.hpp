// The population flow: a velocity field over (cell, time) trained on paths
// through optimal-transport chains of cells (dynamics/population_coupling,
// dynamics/time_spline), and the ODE integration that moves cells along it.
// Implements the public PopulationFlowModel (exprflow/dynamics.hpp).
#pragma once

#include <string>
#include <vector>

#include <torch/nn/modules/embedding.h>

#include "backbone/residual_mlp.hpp"
#include "condition/timestep_embedding.hpp"
#include "dynamics/population_context.hpp"
#include "exprflow/dynamics.hpp"
#include "exprflow/torch_prelude.hpp"
#include "runtime/linear.hpp"

namespace exprflow {

// v(x, t): the cell projected to `hidden`, FiLM residual blocks modulated by
// an embedding of the (normalised) time, projected back. `context` (B,
// hidden), when given, is added to the time embedding (the populations'
// state, dynamics/population_context).
class VelocityFieldImpl : public torch::nn::Module {
 public:
  VelocityFieldImpl(int64_t dim, int64_t hidden, int64_t n_layers, double dropout);
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& context = {});  // (B, d), (B,) -> (B, d)

 private:
  Linear in_{nullptr}, out_{nullptr};
  TimestepEmbedding time_{nullptr};
  ResidualMlp blocks_{nullptr};
};
TORCH_MODULE(VelocityField);

class PopulationFlow : public PopulationFlowModel {
 public:
  PopulationFlow(const Options& spec, int dim);

  TrainReport train(const TimeCourse& data, const TrainCallbacks& callbacks) override;
  std::vector<float> transport(const std::vector<float>& cells, int n, double from, double to, int steps,
                               int course) const override;
  std::vector<float> trajectories(const std::vector<float>& cells, int n, const std::vector<double>& times,
                                  int steps_per_unit, int course) const override;
  std::string to_bytes() const override;
  static std::unique_ptr<PopulationFlow> from_payload(std::string_view payload, const std::string& source);

  const Options& spec() const override { return spec_; }
  int dim() const override { return dim_; }
  const std::vector<double>& observed_times() const override { return times_; }
  int n_courses() const override { return static_cast<int>(course_times_.size()); }
  const std::vector<double>& course_times(int course) const override;
  const std::vector<EpochRecord>& history() const override { return history_; }
  long parameter_count() const override;

 private:
  // Time on the model's scale: 0 at the first observed time, 1 at the last.
  double scaled_time(double t) const { return (t - times_.front()) / (times_.back() - times_.front()); }
  // Cells (n, d) in the field's units (centred, divided by one overall scale) and back.
  Tensor to_field(const Tensor& x) const { return (x - centre_) / scale_; }
  Tensor from_field(const Tensor& z) const { return z * scale_ + centre_; }
  // One Heun step of dz/dt = v(z, t) on the scaled time, for cells of `course`.
  Tensor heun_step(const Tensor& z, double t, double dt, int course) const;
  // The field at scaled times t (B,) read inside the observed range, for
  // cells of `course`: with its populations' state and its embedding where
  // the model has them.
  Tensor velocity(const Tensor& z, const Tensor& t, int course) const;
  // The context a course adds to the time embedding of chains at scaled
  // times tau (B,) (undefined when the model has none): the course
  // embedding's `rows` (B,) (the course's own, or the row of no course) and
  // the state of its populations (their summaries (K, H) at `knots`).
  Tensor course_context(const Tensor& rows, const Tensor& summaries, const std::vector<double>& knots,
                        const Tensor& tau) const;
  // The row of the course embedding a course reads after training: its own,
  // or that of no course when it had no path to learn from.
  int64_t embedding_row(int course) const;
  // The observed times of a course on the field's scale.
  std::vector<double> knots(int course) const;
  Tensor cells_tensor(const std::vector<float>& cells, int n) const;

  Options spec_;
  int dim_;
  std::vector<double> times_;  // observed times of all courses, increasing (empty before training)
  std::vector<std::vector<double>> course_times_;  // each course's observed times, increasing
  Tensor centre_;              // (d,)
  double scale_ = 1.0;
  mutable VelocityField field_{nullptr};  // eval-mode forward passes from const methods
  // state = "ssm": the populations' state over the time points, and per
  // course the summaries (K_c, hidden) of its observed populations it reads
  // (from all their cells, after training).
  mutable PopulationContext context_{nullptr};
  std::vector<Tensor> summaries_;
  // Several courses: an embedding per course and a last row for no course
  // (course_dropout of the chains read it in training), (C + 1, hidden).
  mutable torch::nn::Embedding courses_{nullptr};
  std::vector<EpochRecord> history_;
  bool trained_ = false;
};

}  // namespace exprflow
