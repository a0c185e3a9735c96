// The population flow (issue 12): optimal-transport couplings, paths through
// chains of cells, the populations' state over the time points, and a
// velocity field that moves a population along a curved course to a time
// point it never saw.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "dynamics/population_context.hpp"
#include "dynamics/population_coupling.hpp"
#include "dynamics/time_spline.hpp"
#include "error_message.hpp"
#include "exprflow/dynamics.hpp"

using namespace exprflow;

namespace {

// Cells in 2-D around a point that moves along a circle of radius 5, a
// quarter turn per 2 time units: centre (5 cos(pi t / 4), 5 sin(pi t / 4)).
TimeCourse arc_course(const std::vector<double>& times, int per_time, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  TimeCourse course;
  course.dim = 2;
  for (double t : times) {
    for (int c = 0; c < per_time; ++c) {
      course.points.push_back(static_cast<float>(5 * std::cos(M_PI * t / 4)) + noise(rng));
      course.points.push_back(static_cast<float>(5 * std::sin(M_PI * t / 4)) + noise(rng));
      course.times.push_back(t);
    }
  }
  course.n_cells = static_cast<int>(course.times.size());
  return course;
}

// Mean of n 2-D cells (row-major).
std::pair<double, double> mean_2d(const std::vector<float>& cells) {
  double x = 0, y = 0;
  const size_t n = cells.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    x += cells[2 * i];
    y += cells[2 * i + 1];
  }
  return {x / n, y / n};
}

}  // namespace

TEST(PopulationCoupling, HasUniformMarginalsAndPairsASetWithItself) {
  torch::manual_seed(1);
  const Tensor a = at::randn({30, 3}), b = at::randn({20, 3});
  const Tensor plan = sinkhorn_coupling(a, b, 0.05);
  EXPECT_EQ(plan.sizes(), (std::vector<int64_t>{30, 20}));
  EXPECT_NEAR(plan.sum().item<double>(), 1.0, 1e-5);
  EXPECT_LT((plan.sum(0) - 1.0 / 20).abs().max().item<double>(), 1e-6);  // the last update fits the columns
  EXPECT_LT((plan.sum(1) - 1.0 / 30).abs().max().item<double>(), 2e-3);
  // With a small regularisation, a set is coupled with itself point to point.
  const Tensor self = sinkhorn_coupling(a, a, 0.005, 500);
  EXPECT_TRUE(at::equal(self.argmax(1), at::arange(30)));
  EXPECT_THROW(sinkhorn_coupling(a, at::randn({5, 2}), 0.05), std::invalid_argument);
}

TEST(PopulationCoupling, ScalingLoopsMatchTheLogDomainReference) {
  torch::manual_seed(2);
  const Tensor a = at::randn({40, 5}), b = at::randn({33, 5}) + 0.5;
  for (double epsilon : {0.01, 0.05, 0.5}) {
    const Tensor fast = sinkhorn_coupling(a, b, epsilon), reference = sinkhorn_coupling_reference(a, b, epsilon);
    EXPECT_EQ(fast.scalar_type(), at::kFloat);
    EXPECT_LT((fast - reference).abs().max().item<double>(), 1e-7) << "epsilon " << epsilon;
  }
  // A target far from every source underflows its kernel column: the
  // reference's log-domain answer is used, and it is a coupling.
  Tensor far = b.clone();
  far[0] = far[0] + 1000.0;
  const Tensor fallback = sinkhorn_coupling(a, far, 0.01);
  EXPECT_TRUE(at::equal(fallback, sinkhorn_coupling_reference(a, far, 0.01)));
  EXPECT_NEAR(fallback.sum().item<double>(), 1.0, 1e-5);
  EXPECT_THROW(sinkhorn_coupling_reference(a, at::randn({5, 2}), 0.05), std::invalid_argument);
}

TEST(PopulationCoupling, ChainsVisitEveryPopulationInOrder) {
  std::vector<Tensor> populations{at::zeros({10, 2}), at::ones({7, 2}), at::full({12, 2}, 2.0)};
  at::Generator generator = at::detail::createCPUGenerator(3);
  const Tensor chains = sample_chains(populations, 16, 0.05, generator);
  EXPECT_EQ(chains.sizes(), (std::vector<int64_t>{16, 3, 2}));
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(at::allclose(chains.select(1, k), at::full({16, 2}, double(k))));
}

TEST(TimePaths, SplinePassesThroughTheChainAndItsVelocityIsItsDerivative) {
  // One chain on a parabola y = t^2 at knots 0, 0.3, 1.
  const std::vector<double> knots{0.0, 0.3, 1.0};
  const Tensor chain = at::tensor({0.0f, 0.09f, 1.0f}).reshape({1, 3, 1});
  for (const char* kind : {"spline", "hermite", "linear"}) {
    const TimePaths paths(knots, kind);
    for (size_t k = 0; k < knots.size(); ++k) {
      const auto p = paths.at(chain, at::full({1}, knots[k], at::kFloat));
      EXPECT_NEAR(p.position.item<double>(), chain[0][k][0].item<double>(), 1e-5) << kind;
    }
    for (double t : {0.1, 0.5, 0.9}) {
      const double h = 1e-3;
      const double ahead = paths.at(chain, at::full({1}, t + h, at::kFloat)).position.item<double>();
      const double behind = paths.at(chain, at::full({1}, t - h, at::kFloat)).position.item<double>();
      EXPECT_NEAR(paths.at(chain, at::full({1}, t, at::kFloat)).velocity.item<double>(), (ahead - behind) / (2 * h), 2e-2)
          << kind << " at " << t;
    }
  }
  // The spline bends with the parabola; the straight segments do not.
  EXPECT_NEAR(TimePaths(knots, "linear").at(chain, at::full({1}, 0.65f)).position.item<double>(), 0.545, 1e-5);
  EXPECT_LT(TimePaths(knots, "spline").at(chain, at::full({1}, 0.65f)).position.item<double>(), 0.52);
  EXPECT_THROW(TimePaths(knots, "cubic"), std::invalid_argument);
  EXPECT_THROW(TimePaths({0.0, 0.0, 1.0}, "spline"), std::invalid_argument);
}

TEST(PopulationFlow, FollowsACurvedCourseThroughATimePointItNeverSaw) {
  // Time 2 is held out; the course turns through it (centre (0, 5)). Straight
  // paths between times 1 and 3 pass at (0, 3.54).
  const TimeCourse course = arc_course({0, 1, 3, 4}, 60, 1);
  const TimeCourse start = arc_course({1}, 200, 2);
  auto moved_to_2 = [&](const char* path) {
    auto model = PopulationFlowModel::create(Options().set("path", path).set("steps", 300.0).set("batch_size", 32.0), 2);
    const TrainReport report = model->train(course, {});
    EXPECT_EQ(report.steps, 300);
    EXPECT_EQ(model->history().size(), 3u);
    return mean_2d(model->transport(start.points, 200, 1.0, 2.0, 20, 0));
  };
  // Where each kind of path through the chains' cells passes at time 2 (the
  // field learns their average): straight, (y1 + y3) / 2 = 3.54; Hermite with
  // central-secant tangents, 3.54 + (m1 - m3) / 4 = 4.13; the natural spline
  // through times 0, 1, 3, 4, about 5.
  const auto linear = moved_to_2("linear");
  const auto hermite = moved_to_2("hermite");
  const auto spline = moved_to_2("spline");
  EXPECT_NEAR(linear.second, 3.54, 0.35);
  EXPECT_NEAR(hermite.second, 4.13, 0.35);
  EXPECT_NEAR(spline.second, 5.0, 0.6);
  EXPECT_LT(linear.second, hermite.second);
  EXPECT_LT(hermite.second, spline.second);
  for (const auto& moved : {linear, hermite, spline}) EXPECT_NEAR(moved.first, 0.0, 0.6);
}

TEST(PopulationContext, DirectSumsMatchTheRecurrenceAtAnyTime) {
  torch::manual_seed(4);
  PopulationContext context(3, 8, 5);
  const std::vector<double> knots{0.0, 0.2, 0.5, 1.0};
  const Tensor summaries = at::randn({4, 8});  // (K, H)
  // Before the first time, at times, between them, and beyond the last.
  const Tensor tau = at::tensor({-0.1, 0.0, 0.1, 0.2, 0.35, 0.5, 0.99, 1.0, 1.3}, at::kFloat);
  const Tensor direct = context->states(summaries, knots, tau);  // (9, 10)
  EXPECT_EQ(direct.sizes(), (std::vector<int64_t>{9, 10}));
  EXPECT_LT((direct - context->states_by_recurrence(summaries, knots, tau)).abs().max().item<double>(), 1e-5);
  // At an observed time the forward state has just taken that population's
  // impulse: it jumps there, and the backward state no longer holds it.
  const Tensor around = context->states(summaries, knots, at::tensor({0.2f - 1e-4f, 0.2f}));
  const Tensor impulse = summaries[1].matmul(context->named_parameters()["input_forward.weight"].t());  // (N,)
  EXPECT_LT((around[1].slice(0, 0, 5) - around[0].slice(0, 0, 5) - impulse).abs().max().item<double>(), 1e-2);
  // Beyond the last time every forward mode decays at its own rate, and no backward state is left.
  const Tensor late = context->states(summaries, knots, at::tensor({1.0f, 1.5f}));
  const Tensor ratio = late[1].slice(0, 0, 5) / late[0].slice(0, 0, 5);
  EXPECT_LT((ratio - at::exp(-0.5 * context->rates())).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(late.slice(1, 5, 10).abs().max().item<double>(), 0.0);
  // The rates span a memory as long as the course down to a thirtieth of it.
  EXPECT_NEAR(context->rates().min().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(context->rates().max().item<double>(), 30.0, 1e-4);
  // Gradients reach the summaries and the rates.
  Tensor learned = summaries.clone().requires_grad_(true);
  context->forward(learned, knots, tau).pow(2).sum().backward();
  EXPECT_GT(learned.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(context->named_parameters()["log_rate"].grad().abs().sum().item<double>(), 0.0);
  EXPECT_THROW(context->states(summaries.slice(0, 0, 3), knots, tau), std::invalid_argument);
  EXPECT_THROW(PopulationContext(3, 8, 0), std::invalid_argument);
}

TEST(PopulationFlow, WithThePopulationsStateFollowsTheCourseAndSavesIt) {
  // As above: time 2 held out; Hermite paths pass at about (0, 4.13) there.
  const TimeCourse course = arc_course({0, 1, 3, 4}, 60, 1);
  const TimeCourse start = arc_course({1}, 200, 2);
  const Options spec = Options().set("state", "ssm").set("state_size", 8.0).set("steps", 300.0).set("batch_size", 32.0);
  auto model = PopulationFlowModel::create(spec, 2);
  auto plain = PopulationFlowModel::create(Options().set("steps", 300.0).set("batch_size", 32.0), 2);
  EXPECT_GT(model->parameter_count(), plain->parameter_count());
  model->train(course, {});
  const auto moved = mean_2d(model->transport(start.points, 200, 1.0, 2.0, 20, 0));
  EXPECT_NEAR(moved.first, 0.0, 0.6);
  EXPECT_NEAR(moved.second, 4.13, 0.5);
  const auto again = PopulationFlowModel::load_bytes(model->to_bytes(), "test bytes");
  EXPECT_EQ(again->spec().text("state"), "ssm");
  EXPECT_EQ(model->transport(course.points, course.n_cells, 0.5, 3.5, 7, 0),
            again->transport(course.points, course.n_cells, 0.5, 3.5, 7, 0));
  EXPECT_THROW(PopulationFlowModel::create(Options().set("state", "memory"), 2), std::invalid_argument);
}

TEST(PopulationFlow, SavedBytesMoveCellsAlikeAndErrorsNameTheProblem) {
  const TimeCourse course = arc_course({0, 1, 2}, 30, 3);
  auto model = PopulationFlowModel::create(Options().set("steps", 50.0).set("batch_size", 16.0), 2);
  EXPECT_THROW(model->transport(course.points, course.n_cells, 0, 1, 5, 0), std::invalid_argument);  // untrained
  model->train(course, {});
  const auto again = PopulationFlowModel::load_bytes(model->to_bytes(), "test bytes");
  EXPECT_EQ(again->observed_times(), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(again->history().size(), model->history().size());
  EXPECT_EQ(model->transport(course.points, course.n_cells, 0.5, 2.5, 7, 0),
            again->transport(course.points, course.n_cells, 0.5, 2.5, 7, 0));
  // Trajectories start where the cells are and end where transport() ends.
  const auto path = model->trajectories(course.points, course.n_cells, {0.5, 1.5, 2.5}, 7, 0);
  ASSERT_EQ(path.size(), 3 * course.points.size());
  EXPECT_TRUE(std::equal(course.points.begin(), course.points.end(), path.begin()));
  EXPECT_THROW(PopulationFlowModel::create(Options().set("path", "curvy"), 2), std::invalid_argument);
  EXPECT_THROW(PopulationFlowModel::create(Options().set("n_layer", 2.0), 2), std::invalid_argument);
  TimeCourse one_time = arc_course({1}, 10, 1);
  EXPECT_THROW(PopulationFlowModel::create(Options(), 2)->train(one_time, {}), std::invalid_argument);
  EXPECT_THROW(PopulationFlowModel::load_bytes("not a model", "junk"), std::runtime_error);
}

namespace {

// Cells around (0, 0) at time 0 that move to (+3, 0) at time 1 on course 0
// and to (-3, 0) on course 1; course 2 (if `unmoved`) is observed at time 0
// only.
TimeCourse diverging_courses(int per_time, bool unmoved, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  TimeCourse data;
  data.dim = 2;
  auto add = [&](int course, double t, double x) {
    for (int c = 0; c < per_time; ++c) {
      data.points.push_back(static_cast<float>(x) + noise(rng));
      data.points.push_back(noise(rng));
      data.times.push_back(t);
      data.courses.push_back(course);
    }
  };
  add(0, 0, 0);
  add(0, 1, 3);
  add(1, 0, 0);
  add(1, 1, -3);
  if (unmoved) add(2, 0, 0);
  data.n_cells = static_cast<int>(data.times.size());
  return data;
}

}  // namespace

TEST(PopulationFlow, CoursesShareOneFieldAndEachFollowsItsOwn) {
  const TimeCourse data = diverging_courses(60, true, 5);
  // 100 cells on a line through (0, 0), in mirrored pairs (x, 0), (-x, 0).
  std::vector<float> origin(200, 0.0f);
  for (size_t i = 0; i < origin.size(); i += 4) origin[i] = -(origin[i + 2] = 0.003f * static_cast<float>(i));
  // The course alone, with its populations' state, and with that state
  // missing a population now and then in training.
  for (const double state_dropout : {-1.0, 0.0, 0.5}) {
    SCOPED_TRACE(state_dropout);
    Options spec = Options().set("steps", 400.0).set("batch_size", 48.0);
    if (state_dropout >= 0) spec.set("state", "ssm").set("state_dropout", state_dropout);
    auto model = PopulationFlowModel::create(spec, 2);
    model->train(data, {});
    ASSERT_EQ(model->n_courses(), 3);
    EXPECT_EQ(model->course_times(1), (std::vector<double>{0, 1}));
    EXPECT_EQ(model->course_times(2), (std::vector<double>{0}));
    EXPECT_EQ(model->observed_times(), (std::vector<double>{0, 1}));
    // The same cells, on both sides of 0, go where their course went: one
    // field, read per course.
    EXPECT_NEAR(mean_2d(model->transport(origin, 100, 0.0, 1.0, 20, 0)).first, 3.0, 0.4);
    EXPECT_NEAR(mean_2d(model->transport(origin, 100, 0.0, 1.0, 20, 1)).first, -3.0, 0.4);
    // A course with no path of its own reads the row of no course, which
    // learned what the courses share: here, each side of 0 goes its own way
    // (as without courses below), which leaves the mean near 0.
    EXPECT_LT(std::abs(mean_2d(model->transport(origin, 100, 0.0, 1.0, 20, 2)).first), 1.0);
    const auto again = PopulationFlowModel::load_bytes(model->to_bytes(), "test bytes");
    ASSERT_EQ(again->n_courses(), 3);
    for (int course = 0; course < 3; ++course) {
      EXPECT_EQ(model->transport(origin, 100, 0.0, 0.7, 9, course), again->transport(origin, 100, 0.0, 0.7, 9, course));
    }
    EXPECT_THROW(model->transport(origin, 100, 0.0, 1.0, 5, 3), std::invalid_argument);
    EXPECT_THROW(model->trajectories(origin, 100, {0.0, 1.0}, 5, -1), std::invalid_argument);
  }
  // Without courses the coupling sends each side of 0 its own way.
  TimeCourse pooled = diverging_courses(60, false, 5);
  pooled.courses.clear();
  auto plain = PopulationFlowModel::create(Options().set("steps", 400.0).set("batch_size", 48.0), 2);
  plain->train(pooled, {});
  EXPECT_EQ(plain->n_courses(), 1);
  EXPECT_LT(std::abs(mean_2d(plain->transport(origin, 100, 0.0, 1.0, 20, 0)).first), 1.0);
  // Errors: a course without cells, no course observed twice, courses per cell.
  TimeCourse gap = diverging_courses(10, false, 1);
  for (int& c : gap.courses) c = c == 1 ? 2 : c;
  EXPECT_TRUE(mentions(error_of([&] { PopulationFlowModel::create(Options(), 2)->train(gap, {}); }), "course 1 has no cells"));
  TimeCourse once = diverging_courses(10, false, 1);
  for (size_t i = 0; i < once.times.size(); ++i) once.times[i] = once.courses[i];
  EXPECT_TRUE(mentions(error_of([&] { PopulationFlowModel::create(Options(), 2)->train(once, {}); }), "in one course at least"));
  TimeCourse short_courses = diverging_courses(10, false, 1);
  short_courses.courses.pop_back();
  EXPECT_THROW(PopulationFlowModel::create(Options(), 2)->train(short_courses, {}), std::invalid_argument);
  EXPECT_THROW(PopulationFlowModel::create(Options().set("course_dropout", 1.0), 2), std::invalid_argument);
  EXPECT_THROW(PopulationFlowModel::create(Options().set("state_dropout", -0.1), 2), std::invalid_argument);
}
