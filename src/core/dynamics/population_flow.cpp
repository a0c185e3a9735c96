#include "dynamics/population_flow.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/utils/clip_grad.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>

#include "dynamics/population_coupling.hpp"
#include "dynamics/time_spline.hpp"
#include "io/model_envelope.hpp"
#include "io/tensor_bundle.hpp"
#include "runtime/linear.hpp"
#include "train/optimiser.hpp"

namespace exprflow {

namespace {

constexpr const char* kKind = "population_flow";
constexpr int kStepsPerRecord = 100;  // one history record per this many optimiser steps
// Cells per population whose summary a training step reads (a fresh draw each
// step, so that the summary is learned from the population, not from one
// fixed set of cells).
constexpr int64_t kSummaryCells = 256;

}  // namespace

// ------------------------------------------------------------ the network ---
VelocityFieldImpl::VelocityFieldImpl(int64_t dim, int64_t hidden, int64_t n_layers, double dropout) {
  in_ = register_module("in", Linear(dim, hidden));
  time_ = register_module("time", TimestepEmbedding(hidden));
  blocks_ = register_module("blocks", ResidualMlp(hidden, n_layers, 2.0, dropout));
  out_ = register_module("out", Linear(hidden, dim));
}

Tensor VelocityFieldImpl::forward(const Tensor& x, const Tensor& t, const Tensor& context) {
  const Tensor h = in_->forward(x).unsqueeze(1);  // (B, 1, H)
  Tensor c = time_->forward(t);                   // (B, H)
  if (context.defined()) c = c + context;
  return out_->forward(blocks_->forward(h, c).squeeze(1));  // (B, d)
}

// ------------------------------------------------------------- the model ---
Options PopulationFlowModel::default_spec() {
  // Measured on the hESC -> endoderm time course, each interior time point
  // held out (inst/scripts/compare_dynamics.R, 600 steps): mean sliced W1
  // 1.262 with Hermite paths, 1.283 straight, 1.655 natural splines (which
  // overshoot into the long 36 -> 96 h gap); the OT baseline 1.272.
  return Options()
      .set("hidden", 128.0)
      .set("n_layers", 3.0)
      .set("dropout", 0.0)
      .set("path", "hermite")
      // "ssm": the field also reads the populations' state over the time
      // points (dynamics/population_context), state_size modes per direction.
      .set("state", "time")
      .set("state_size", 16.0)
      // The chance that a population is left out of its course's state in a
      // training step (the course's first always stays): the field then
      // learns to move a course whose later populations it has not seen, as
      // it is asked to for a course observed at its start only.
      .set("state_dropout", 0.0)
      // Several courses: the fraction of chains that read the embedding of no
      // course in training, so that a course observed at one time only (no
      // path of its own) is moved by what all courses share.
      .set("course_dropout", 0.2)
      .set("coupling_epsilon", 0.05)
      .set("path_noise", 0.0)
      .set("batch_size", 128.0)
      .set("steps", 600.0)
      .set("learning_rate", 1e-3)
      .set("weight_decay", 0.0)
      .set("seed", 1.0);
}

std::unique_ptr<PopulationFlowModel> PopulationFlowModel::create(const Options& spec, int dim) {
  return std::make_unique<PopulationFlow>(default_spec().merged(spec, true), dim);
}

std::unique_ptr<PopulationFlowModel> PopulationFlowModel::load_bytes(std::string_view bytes,
                                                                     const std::string& source) {
  return PopulationFlow::from_payload(open_envelope(bytes, source, "population flow model").payload, source);
}

PopulationFlow::PopulationFlow(const Options& spec, int dim) : spec_(spec), dim_(dim) {
  if (dim < 1) throw std::invalid_argument("the cells' dimension must be at least 1");
  const long hidden = spec_.positive("hidden"), n_layers = spec_.positive("n_layers");
  spec_.positive("batch_size");
  spec_.positive("steps");
  const double dropout = spec_.number("dropout");
  if (dropout < 0 || dropout >= 1) throw std::invalid_argument("dropout must be in [0, 1)");
  if (!(spec_.number("coupling_epsilon") > 0)) throw std::invalid_argument("coupling_epsilon must be positive");
  if (spec_.number("path_noise") < 0) throw std::invalid_argument("path_noise must be at least 0");
  const double course_dropout = spec_.number("course_dropout", 0.2);
  if (course_dropout < 0 || course_dropout >= 1) throw std::invalid_argument("course_dropout must be in [0, 1)");
  const double state_dropout = spec_.number("state_dropout", 0.0);
  if (state_dropout < 0 || state_dropout >= 1) throw std::invalid_argument("state_dropout must be in [0, 1)");
  if (!(spec_.number("learning_rate") > 0)) throw std::invalid_argument("learning_rate must be positive");
  const std::string path = spec_.text("path");
  if (path != "hermite" && path != "spline" && path != "linear") {
    throw std::invalid_argument("path must be \"hermite\", \"spline\" or \"linear\"; got \"" + path + "\"");
  }
  // Models saved before the setting existed read the time alone.
  const std::string state = spec_.text("state", "time");
  if (state != "time" && state != "ssm") {
    throw std::invalid_argument("state must be \"time\" or \"ssm\"; got \"" + state + "\"");
  }
  torch::manual_seed(static_cast<uint64_t>(spec_.integer("seed")));
  field_ = VelocityField(dim, hidden, n_layers, dropout);
  // Built after the field, so that the field starts from the same weights either way.
  if (state == "ssm") context_ = PopulationContext(dim, hidden, spec_.positive("state_size"));
  centre_ = at::zeros({dim});
}

long PopulationFlow::parameter_count() const {
  long n = 0;
  for (const Tensor& p : field_->parameters()) n += p.numel();
  if (context_) {
    for (const Tensor& p : context_->parameters()) n += p.numel();
  }
  if (courses_) n += courses_->weight.numel();
  return n;
}

const std::vector<double>& PopulationFlow::course_times(int course) const {
  if (course < 0 || course >= n_courses()) {
    throw std::invalid_argument("course " + std::to_string(course) + " does not exist; the model has " +
                                std::to_string(n_courses()) + " (numbered from 0)");
  }
  return course_times_[static_cast<size_t>(course)];
}

std::vector<double> PopulationFlow::knots(int course) const {
  std::vector<double> out;
  for (double t : course_times(course)) out.push_back(scaled_time(t));
  return out;
}

int64_t PopulationFlow::embedding_row(int course) const {
  return course_times(course).size() >= 2 ? course : n_courses();
}

Tensor PopulationFlow::course_context(const Tensor& rows, const Tensor& summaries, const std::vector<double>& knots,
                                      const Tensor& tau) const {
  Tensor out;
  if (context_) out = context_->forward(summaries, knots, tau);  // (B, H)
  if (courses_) {
    const Tensor embedded = courses_->forward(rows);  // (B, H)
    out = out.defined() ? out + embedded : embedded;
  }
  return out;
}

Tensor PopulationFlow::velocity(const Tensor& z, const Tensor& t, int course) const {
  const Tensor summaries = context_ ? summaries_[static_cast<size_t>(course)] : Tensor();
  const Tensor rows = at::full({z.size(0)}, embedding_row(course), at::TensorOptions().dtype(at::kLong));  // (n,)
  return field_->forward(z, t, course_context(rows, summaries, knots(course), t));  // (n, d)
}

Tensor PopulationFlow::cells_tensor(const std::vector<float>& cells, int n) const {
  if (n < 0 || cells.size() != static_cast<size_t>(n) * static_cast<size_t>(dim_)) {
    throw std::invalid_argument("cells must hold n x " + std::to_string(dim_) + " values");
  }
  return at::from_blob(const_cast<float*>(cells.data()), {n, dim_}, at::kFloat).clone();  // (n, d)
}

TrainReport PopulationFlow::train(const TimeCourse& data, const TrainCallbacks& callbacks) {
  if (data.dim != dim_) {
    throw std::invalid_argument("the time course has " + std::to_string(data.dim) + " dimensions; the model " +
                                std::to_string(dim_));
  }
  if (data.times.size() != static_cast<size_t>(data.n_cells)) throw std::invalid_argument("one time per cell is needed");
  if (!data.courses.empty() && data.courses.size() != static_cast<size_t>(data.n_cells)) {
    throw std::invalid_argument("one course per cell is needed (or none)");
  }
  const Tensor points = cells_tensor(data.points, data.n_cells);  // (N, d)
  if (!at::isfinite(points).all().item<bool>()) throw std::invalid_argument("the cells have non-finite values");
  auto course_of = [&](int i) { return data.courses.empty() ? 0 : data.courses[static_cast<size_t>(i)]; };
  int n_courses = 1;
  for (int c : data.courses) {
    if (c < 0) throw std::invalid_argument("course numbers must be 0 or more");
    n_courses = std::max(n_courses, c + 1);
  }
  std::set<double> distinct;
  std::vector<std::set<double>> course_distinct(static_cast<size_t>(n_courses));
  for (int i = 0; i < data.n_cells; ++i) {
    const double t = data.times[static_cast<size_t>(i)];
    if (!std::isfinite(t)) throw std::invalid_argument("the times must be finite");
    distinct.insert(t);
    course_distinct[static_cast<size_t>(course_of(i))].insert(t);
  }
  std::vector<std::vector<double>> per_course;
  bool any_path = false;
  for (int c = 0; c < n_courses; ++c) {
    const std::set<double>& seen = course_distinct[static_cast<size_t>(c)];
    if (seen.empty()) {
      throw std::invalid_argument("course " + std::to_string(c) + " has no cells (courses are numbered 0 .. " +
                                  std::to_string(n_courses - 1) + ")");
    }
    any_path = any_path || seen.size() >= 2;
    per_course.emplace_back(seen.begin(), seen.end());
  }
  if (!any_path) {
    throw std::invalid_argument(n_courses == 1 ? "a time course needs at least two distinct times"
                                               : "a time course needs at least two distinct times in one course at least");
  }
  if (trained_ && per_course != course_times_) {
    throw std::invalid_argument("continued training needs the same courses and time points");
  }
  times_.assign(distinct.begin(), distinct.end());
  course_times_ = per_course;
  const int64_t hidden = spec_.positive("hidden");
  if (!trained_) {
    // One overall scale, so that directions keep their relative sizes.
    centre_ = points.mean(0);
    scale_ = std::max(std::sqrt((points - centre_).pow(2).mean().item<double>()), 1e-8);
    // Built here, after the field, as the number of courses is known only
    // now; standard normal rows (as class embeddings start), so that courses
    // are told apart from the first step.
    courses_ = nullptr;
    if (n_courses > 1) courses_ = torch::nn::Embedding(n_courses + 1, hidden);
  }
  // Each course's populations (one (n_k, d) per observed time, in the
  // field's units); those observed at two times or more give chains, as many
  // per step as their share of those courses' cells.
  struct Track {
    int course;
    std::vector<Tensor> populations;
    std::vector<double> knots;  // the course's observed times on the field's scale
    TimePaths paths;
    int64_t chains;
  };
  std::vector<std::vector<Tensor>> populations(static_cast<size_t>(n_courses));
  int64_t cells_on_paths = 0;
  for (int c = 0; c < n_courses; ++c) {
    for (double t : course_times_[static_cast<size_t>(c)]) {
      std::vector<int64_t> rows;
      for (int i = 0; i < data.n_cells; ++i) {
        if (data.times[static_cast<size_t>(i)] == t && course_of(i) == c) rows.push_back(i);
      }
      populations[static_cast<size_t>(c)].push_back(to_field(points.index_select(0, at::tensor(rows, at::kLong))));
      if (course_times_[static_cast<size_t>(c)].size() >= 2) cells_on_paths += static_cast<int64_t>(rows.size());
    }
  }
  const int64_t batch = spec_.positive("batch_size"), steps = spec_.positive("steps");
  std::vector<Track> tracks;
  for (int c = 0; c < n_courses; ++c) {
    const std::vector<Tensor>& course = populations[static_cast<size_t>(c)];
    if (course.size() < 2) continue;
    int64_t cells = 0;
    for (const Tensor& p : course) cells += p.size(0);
    const int64_t chains = std::max<int64_t>(
        1, std::llround(static_cast<double>(batch) * static_cast<double>(cells) / static_cast<double>(cells_on_paths)));
    std::vector<double> course_knots = knots(c);
    TimePaths paths(course_knots, spec_.text("path"));
    tracks.push_back(Track{c, course, std::move(course_knots), std::move(paths), chains});
  }
  const double epsilon = spec_.number("coupling_epsilon"), noise = spec_.number("path_noise");
  const double course_dropout = spec_.number("course_dropout", 0.2);
  const double state_dropout = spec_.number("state_dropout", 0.0);
  const double lr = spec_.number("learning_rate");
  AdamWSettings adamw;
  adamw.learning_rate = lr;
  adamw.weight_decay = spec_.number("weight_decay");
  std::vector<Tensor> parameters = field_->parameters();
  if (context_) {
    for (const Tensor& p : context_->parameters()) parameters.push_back(p);
  }
  if (courses_) parameters.push_back(courses_->weight);
  const std::unique_ptr<Optimiser> optimiser = make_adamw(parameters, adamw);
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(spec_.integer("seed")));
  field_->train();
  if (context_) context_->train();
  if (callbacks.on_stage) callbacks.on_stage("dynamics");
  TrainReport report;
  double loss_sum = 0;
  int in_record = 0;
  auto started = std::chrono::steady_clock::now();
  for (int64_t step = 1; step <= steps; ++step) {
    // Cosine decay to a tenth of the learning rate.
    const double progress = static_cast<double>(step - 1) / static_cast<double>(steps);
    const double rate = lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * progress)));
    optimiser->set_learning_rate(rate);
    std::vector<Tensor> positions, velocities, taus, contexts;
    for (const Track& track : tracks) {
      Tensor chains, tau;
      TimePaths::Point target;
      {
        torch::NoGradGuard no_grad;
        chains = sample_chains(track.populations, track.chains, epsilon, generator);  // (b, K_c, d)
        tau = at::rand({track.chains}, generator);                                     // (b,)
        target = track.paths.at(chains, tau);
        if (noise > 0) target.position = target.position + noise * at::randn(target.position.sizes(), generator);
      }
      Tensor summaries;
      std::vector<double> state_knots;  // the knots of the populations in the state this step
      if (context_) {
        std::vector<Tensor> drawn;  // at most kSummaryCells cells of each population, with replacement
        for (size_t k = 0; k < track.populations.size(); ++k) {
          if (k > 0 && state_dropout > 0 && at::rand({1}, generator).item<double>() < state_dropout) continue;
          const Tensor& cells = track.populations[k];
          const int64_t n = std::min<int64_t>(cells.size(0), kSummaryCells);
          drawn.push_back(cells.index_select(
              0, at::randint(cells.size(0), {n}, generator, at::TensorOptions().dtype(at::kLong))));
          state_knots.push_back(track.knots[k]);
        }
        summaries = context_->summarise(drawn);  // (K_kept, H)
      }
      Tensor rows;  // (b,): the course's row, or no course's for course_dropout of the chains
      if (courses_) {
        const Tensor dropped = at::rand({track.chains}, generator) < course_dropout;
        rows = at::where(dropped, at::full({track.chains}, n_courses, at::TensorOptions().dtype(at::kLong)),
                         at::full({track.chains}, track.course, at::TensorOptions().dtype(at::kLong)));
      }
      positions.push_back(target.position);
      velocities.push_back(target.velocity);
      taus.push_back(tau);
      const Tensor context = course_context(rows, summaries, state_knots, tau);
      if (context.defined()) contexts.push_back(context);
    }
    const Tensor position = at::cat(positions), target_velocity = at::cat(velocities), tau = at::cat(taus);
    const Tensor context = contexts.empty() ? Tensor() : at::cat(contexts);  // (B, H)
    const Tensor loss = (field_->forward(position, tau, context) - target_velocity).pow(2).mean();
    optimiser->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(parameters, 1.0);  // the field's, the populations' state's, the courses'
    optimiser->step();
    const double value = loss.item<double>();
    loss_sum += value;
    ++in_record;
    ++report.steps;
    if (callbacks.on_step && !callbacks.on_step(step, steps, value)) {
      report.interrupted = true;
      break;
    }
    if (in_record == kStepsPerRecord || step == steps) {
      EpochRecord record;
      record.stage = "dynamics";
      record.epoch = static_cast<int>(history_.size()) + 1;
      record.train_loss = loss_sum / in_record;
      record.validation_loss = std::nan("");
      record.learning_rate = rate;
      const auto now = std::chrono::steady_clock::now();
      record.seconds = std::chrono::duration<double>(now - started).count();
      started = now;
      history_.push_back(record);
      report.history.push_back(record);
      if (callbacks.on_epoch) callbacks.on_epoch(record);
      loss_sum = 0;
      in_record = 0;
    }
  }
  field_->eval();
  if (context_) {
    context_->eval();
    torch::NoGradGuard no_grad;
    summaries_.clear();
    for (const std::vector<Tensor>& course : populations) {
      summaries_.push_back(context_->summarise(course));  // (K_c, H), from every cell
    }
  }
  trained_ = trained_ || report.steps > 0;
  return report;
}

Tensor PopulationFlow::heun_step(const Tensor& z, double t, double dt, int course) const {
  const int64_t n = z.size(0);
  // Outside the observed range the field was never trained: there it is
  // read at the nearest observed end (a forecast continues the motion the
  // population had at the last time point; the R layer chooses how far
  // cells go there, fit_dynamics_model(forecast =)).
  auto field_time = [&](double at_time) { return at::full({n}, std::clamp(at_time, 0.0, 1.0), z.options()); };
  const Tensor v0 = velocity(z, field_time(t), course);                 // (n, d)
  const Tensor v1 = velocity(z + dt * v0, field_time(t + dt), course);  // (n, d)
  return z + 0.5 * dt * (v0 + v1);
}

std::vector<float> PopulationFlow::transport(const std::vector<float>& cells, int n, double from, double to,
                                             int steps, int course) const {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  if (steps < 1) throw std::invalid_argument("steps must be at least 1");
  if (from == to) return trajectories(cells, n, {from}, 1, course);
  // `steps` over the whole move: per unit of the scaled time, that many over its length.
  const double span = std::abs(scaled_time(to) - scaled_time(from));
  const int per_unit = std::max(1, static_cast<int>(std::ceil(steps / span - 1e-9)));
  std::vector<float> path = trajectories(cells, n, {from, to}, per_unit, course);
  return std::vector<float>(path.begin() + static_cast<std::ptrdiff_t>(n) * dim_, path.end());
}

std::vector<float> PopulationFlow::trajectories(const std::vector<float>& cells, int n,
                                                const std::vector<double>& times, int steps_per_unit,
                                                int course) const {
  if (!trained_) throw std::invalid_argument("the model has not been trained yet");
  course_times(course);  // checks that the course exists
  if (times.empty()) throw std::invalid_argument("give at least one time");
  for (double t : times) {
    if (!std::isfinite(t)) throw std::invalid_argument("the times must be finite");
  }
  if (steps_per_unit < 1) throw std::invalid_argument("steps must be at least 1");
  torch::NoGradGuard no_grad;
  field_->eval();
  const Tensor x = cells_tensor(cells, n);  // (n, d)
  Tensor z = to_field(x);
  std::vector<Tensor> path{x};  // where the cells are, exactly
  for (size_t k = 1; k < times.size(); ++k) {
    const double t0 = scaled_time(times[k - 1]), t1 = scaled_time(times[k]);
    const int64_t steps = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::abs(t1 - t0) * steps_per_unit)));
    const double dt = (t1 - t0) / static_cast<double>(steps);
    for (int64_t s = 0; s < steps; ++s) z = heun_step(z, t0 + s * dt, dt, course);
    path.push_back(from_field(z));
  }
  const Tensor out = at::stack(path).contiguous();  // (T, n, d)
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

std::string PopulationFlow::to_bytes() const {
  TensorBundle bundle;
  bundle.meta["kind"] = kKind;
  bundle.meta["spec"] = Json::parse(spec_.to_json());
  bundle.meta["dim"] = dim_;
  bundle.meta["times"] = times_;
  bundle.meta["courses"] = course_times_;
  bundle.meta["scale"] = scale_;
  bundle.meta["trained"] = trained_;
  Json history = Json::array();
  for (const EpochRecord& r : history_) {
    history.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"learning_rate", r.learning_rate},
                       {"seconds", r.seconds}});
  }
  bundle.meta["history"] = history;
  bundle.put("centre", centre_);
  bundle.put_module("field", *field_);
  if (context_) {
    bundle.put_module("context", *context_);
    // Course 0's under the name models of one course always had.
    for (size_t c = 0; c < summaries_.size(); ++c) {
      bundle.put(c == 0 ? std::string("summaries") : "summaries." + std::to_string(c), summaries_[c]);
    }
  }
  if (courses_) bundle.put_module("courses", *courses_);
  return seal_payload(bundle.to_bytes());
}

std::unique_ptr<PopulationFlow> PopulationFlow::from_payload(std::string_view payload, const std::string& source) {
  const TensorBundle bundle = TensorBundle::from_bytes(payload);
  if (!bundle.meta.contains("kind") || bundle.meta["kind"] != kKind) {
    throw std::invalid_argument(source + " does not hold a population flow model");
  }
  try {
    auto model = std::make_unique<PopulationFlow>(Options::from_json(bundle.meta.at("spec").dump()),
                                                  bundle.meta.at("dim").get<int>());
    model->times_ = bundle.meta.at("times").get<std::vector<double>>();
    // Models saved before courses existed had one.
    model->course_times_ = bundle.meta.contains("courses")
                               ? bundle.meta.at("courses").get<std::vector<std::vector<double>>>()
                               : std::vector<std::vector<double>>{model->times_};
    model->scale_ = bundle.meta.at("scale").get<double>();
    model->trained_ = bundle.meta.at("trained").get<bool>();
    for (const Json& r : bundle.meta.at("history")) {
      EpochRecord record;
      record.stage = "dynamics";
      record.epoch = r.at("epoch").get<int>();
      record.train_loss = r.at("train_loss").get<double>();
      record.validation_loss = std::nan("");
      record.learning_rate = r.at("learning_rate").get<double>();
      record.seconds = r.at("seconds").get<double>();
      model->history_.push_back(record);
    }
    model->centre_ = bundle.get("centre", {model->dim_}, at::kFloat).clone();
    bundle.get_module("field", *model->field_);
    model->field_->eval();
    const int64_t hidden = model->spec_.positive("hidden");
    if (model->context_) {
      bundle.get_module("context", *model->context_);
      model->context_->eval();
      if (model->trained_) {
        for (size_t c = 0; c < model->course_times_.size(); ++c) {
          model->summaries_.push_back(
              bundle.get(c == 0 ? std::string("summaries") : "summaries." + std::to_string(c),
                         {static_cast<int64_t>(model->course_times_[c].size()), hidden}, at::kFloat).clone());
        }
      }
    }
    if (model->course_times_.size() > 1) {
      model->courses_ = torch::nn::Embedding(static_cast<int64_t>(model->course_times_.size()) + 1, hidden);
      bundle.get_module("courses", *model->courses_);
    }
    if (model->trained_ && (model->times_.size() < 2 || !(model->scale_ > 0))) {
      throw std::invalid_argument("its times or scale are malformed");
    }
    return model;
  } catch (const Json::exception& e) {
    throw std::invalid_argument(source + ": malformed population flow metadata (" + e.what() + ")");
  }
}

}  // namespace exprflow
