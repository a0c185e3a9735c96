// Every registered composition, with both objectives, through the torch-free
// API: create -> train one epoch -> generate -> embed -> save / load bit-
// identical -> the same seed gives the same cells. A new composition row is
// picked up here without touching this file.
//
// And the flow objective end to end on a known answer: a state-vector network
// trained by flow matching on N(mu, Sigma) must map N(0, I) to it.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>

#include <cstdio>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "api/expression_model.hpp"
#include "two_programme_cells.hpp"
#include "error_message.hpp"
#include "api/latent_model.hpp"
#include "api/model_file.hpp"
#include "backbone/dit.hpp"
#include "data/expression_source.hpp"
#include "exprflow/api.hpp"
#include "models/composed_network.hpp"
#include "models/compositions.hpp"
#include "objective/flow_matching.hpp"
#include "sample/samplers.hpp"

using namespace exprflow;

namespace {

constexpr int kGenes = 12, kCells = 80;

using SmallData = TwoProgrammeCells;

const SmallData& small_data() {
  static const SmallData d = two_programme_cells(TwoProgrammeSettings{kGenes, kCells});
  return d;
}

// Small settings of every stage a composition may use; keys a composition
// does not have are left out.
Options tiny_spec(const std::string& architecture, const std::string& objective) {
  const Options defaults = composition_defaults(architecture, objective);
  Options o;
  o.set("architecture", architecture).set("seed", 3);
  if (!objective.empty()) o.set("objective", objective);
  const Options small = Options()
                            .set("n_tokens", 2).set("token_dim", 8).set("n_layers", 1).set("n_heads", 2)
                            .set("hidden", 16).set("timesteps", 50)
                            .set("latent_dim", 4).set("vae_hidden", 16).set("vae_layers", 1).set("state_size", 4);
  // A token encoder's tokens fix the code's width and the flow's token count.
  const bool token_encoder = defaults.text("vae_encoder", "mlp") != "mlp";
  for (const auto& [key, value] : small.values()) {
    if (token_encoder && (key == "latent_dim" || key == "n_tokens")) continue;
    if (defaults.has(key)) o.set(key, value.number);
  }
  return o;
}

// What an architecture is built from (models/compositions.hpp): gene sets
// over the 12 genes, two overlapping, three genes in none (the residual
// token); a small regulatory network.
Resources resources_for(const std::string& architecture) {
  Resources r;
  for (const std::string& name : composition(architecture).resources) {
    if (name == "grn") {  // a chain 0 -> 1 -> ... -> 5 and 6 -> 8, 7 -> 8
      r["grn"] = {{7, 2}, {0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 8, 7, 8}, {}, {"regulator", "target"}};
      continue;
    }
    if (name != "gene_sets") ADD_FAILURE() << "no test resource for '" << name << "'";
    std::vector<float> member(3 * kGenes, 0.0f);
    for (int g : {0, 1, 2, 3}) member[0 * kGenes + g] = 1;
    for (int g : {2, 3, 4, 5, 6}) member[1 * kGenes + g] = 1;
    for (int g : {7, 8}) member[2 * kGenes + g] = 1;
    r["gene_sets"] = {{3, kGenes}, member, {"set_a", "set_b", "set_c"}, {}};
  }
  return r;
}

// One epoch of every stage the architecture trains.
Options one_epoch(const std::string& architecture = "state_mlp") {
  Options o = Options().set("epochs", 1).set("batch_size", 16).set("learning_rate", 1e-3)
                  .set("validation_fraction", 0.2).set("seed", 4);
  if (GenerativeModel::default_train_options(architecture).has("vae_epochs")) {
    o.set("vae_epochs", 1).set("vae_batch_size", 16);
  }
  return o;
}

// Every parameter of a model: the networks of a gene-space model, the VAE and
// the latent networks of a latent model.
std::map<std::string, Tensor> all_parameters(GenerativeModel& model) {
  std::map<std::string, Tensor> out;
  auto add = [&out](const std::string& prefix, torch::nn::Module& m) {
    for (const auto& p : m.named_parameters()) out[prefix + p.key()] = p.value();
  };
  if (auto* e = dynamic_cast<ExpressionModel*>(&model)) {
    add("network.", e->network());
    add("ema.", e->ema_network());
  } else if (auto* l = dynamic_cast<LatentModel*>(&model)) {
    add("vae.", l->vae());
    if (l->has_latent_model()) {
      add("network.", l->latent_network());
      add("ema.", l->latent_ema());
    }
  }
  return out;
}

Options sampling(long seed) { return Options().set("seed", static_cast<double>(seed)).set("steps", 5); }

struct Case {
  std::string architecture, objective;
};

// How GoogleTest prints a case; without it, it dumps the struct's raw bytes,
// uninitialised padding of the strings included (valgrind reports those).
void PrintTo(const Case& c, std::ostream* os) { *os << c.architecture << "/" << c.objective; }

std::vector<Case> every_composition() {
  std::vector<Case> cases;
  for (const std::string& name : GenerativeModel::architectures()) {
    if (composition(name).objective.empty()) {
      cases.push_back({name, ""});  // no generative stage, no objective
      continue;
    }
    for (const std::string& objective : {"ddpm", "flow"}) cases.push_back({name, objective});
  }
  return cases;
}

class EveryComposition : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(EveryComposition, TrainGenerateEmbedSaveLoadReproduce) {
  const Case c = GetParam();
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec(c.architecture, c.objective), d.source->genes(), {"A", "B"},
                                       resources_for(c.architecture));
  EXPECT_EQ(model->spec().text("objective", ""), c.objective);
  const bool latent = composition(c.architecture).space == "latent";
  const bool two_stages = latent && !c.objective.empty();
  std::vector<std::string> stages;
  TrainCallbacks callbacks;
  callbacks.on_stage = [&stages](const std::string& stage) { stages.push_back(stage); };
  const TrainReport report = model->train(*d.source, d.conditions, one_epoch(c.architecture), callbacks);
  ASSERT_EQ(report.history.size(), two_stages ? 2u : 1u);
  for (const EpochRecord& r : report.history) EXPECT_TRUE(std::isfinite(r.validation_loss));
  EXPECT_EQ(report.history.front().stage, latent ? "vae" : "model");
  if (two_stages) {
    EXPECT_EQ(report.history.back().stage, "latent");
    EXPECT_EQ(stages, (std::vector<std::string>{"vae", "latent"}));
  }
  EXPECT_TRUE(model->trained());

  const std::vector<int> conditions = {0, 1, -1, 1};
  for (const char* method : {"default", "ddim", "ddpm", "euler", "heun"}) {
    Options o = sampling(7);
    o.set("method", method);
    GeneratedCells cells = model->generate(conditions, o);
    ASSERT_EQ(cells.n_cells, 4);
    for (float v : cells.logcounts) ASSERT_TRUE(std::isfinite(v) && v >= 0) << method;
    for (int v : cells.counts) ASSERT_GE(v, 0) << method;
  }
  const GeneratedCells cells = model->generate(conditions, sampling(7));

  int dims = 0;
  const std::vector<float> embedding = model->embed(*d.source, &dims);
  ASSERT_GT(dims, 0);
  ASSERT_EQ(embedding.size(), static_cast<size_t>(kCells) * dims);
  for (float v : embedding) ASSERT_TRUE(std::isfinite(v));

  const std::string path = ::testing::TempDir() + "exprflow_composition_" + c.architecture + "_" + c.objective + ".pt";
  model->save(path);
  auto loaded = GenerativeModel::load(path);
  std::remove(path.c_str());
  const auto pa = all_parameters(*model), pb = all_parameters(*loaded);
  ASSERT_FALSE(pa.empty());
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& [key, value] : pa) EXPECT_TRUE(at::equal(value, pb.at(key))) << key << " differs";
  EXPECT_EQ(loaded->history().size(), model->history().size());
  EXPECT_EQ(loaded->spec().to_json(), model->spec().to_json());
  EXPECT_EQ(loaded->generate(conditions, sampling(7)).logcounts, cells.logcounts);
  int dims2 = 0;
  EXPECT_EQ(loaded->embed(*d.source, &dims2), embedding);

  // The same seeds give the same model and the same cells; another sampling seed other cells.
  auto again = GenerativeModel::create(tiny_spec(c.architecture, c.objective), d.source->genes(), {"A", "B"},
                                       resources_for(c.architecture));
  again->train(*d.source, d.conditions, one_epoch(c.architecture), {});
  const GeneratedCells same = again->generate(conditions, sampling(7));
  EXPECT_EQ(same.logcounts, cells.logcounts);
  EXPECT_EQ(same.counts, cells.counts);
  EXPECT_NE(again->generate(conditions, sampling(8)).logcounts, cells.logcounts);
}

// The CUDA path (skipped without a GPU): every composition trains and
// samples on the device with its parameters there, its file holds CPU
// tensors that load on the CPU with the same weights, and the same weights
// embed the same cells on both devices.
TEST_P(EveryComposition, TrainsAndSamplesOnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const Case c = GetParam();
  const SmallData& d = small_data();
  Options spec = tiny_spec(c.architecture, c.objective);
  spec.set("device", "cuda");
  auto model = GenerativeModel::create(spec, d.source->genes(), {"A", "B"}, resources_for(c.architecture));
  EXPECT_EQ(model->device().rfind("cuda", 0), 0u) << model->device();
  const TrainReport report = model->train(*d.source, d.conditions, one_epoch(c.architecture), {});
  for (const EpochRecord& r : report.history) EXPECT_TRUE(std::isfinite(r.validation_loss));
  const auto on_gpu = all_parameters(*model);
  ASSERT_FALSE(on_gpu.empty());
  for (const auto& [key, value] : on_gpu) EXPECT_TRUE(value.is_cuda()) << key;

  const std::vector<int> conditions = {0, 1, -1, 1};
  for (const char* method : {"default", "ddim", "ddpm", "euler", "heun"}) {
    Options o = sampling(7);
    o.set("method", method);
    const GeneratedCells cells = model->generate(conditions, o);
    ASSERT_EQ(cells.n_cells, 4);
    for (int v : cells.counts) ASSERT_GE(v, 0) << method;
  }
  int dims = 0;
  const std::vector<float> embedding = model->embed(*d.source, &dims);
  ASSERT_EQ(embedding.size(), static_cast<size_t>(kCells) * dims);

  auto loaded = GenerativeModel::load_bytes(model->to_bytes());
  EXPECT_EQ(loaded->device(), "cpu");
  const auto on_cpu = all_parameters(*loaded);
  ASSERT_EQ(on_cpu.size(), on_gpu.size());
  for (const auto& [key, value] : on_gpu) EXPECT_TRUE(at::equal(value.cpu(), on_cpu.at(key))) << key;
  int cpu_dims = 0;
  const std::vector<float> cpu_embedding = loaded->embed(*d.source, &cpu_dims);
  ASSERT_EQ(cpu_dims, dims);
  const auto as_tensor = [](const std::vector<float>& v) {
    return at::tensor(v, at::TensorOptions().dtype(at::kFloat));
  };
  const Tensor gpu_e = as_tensor(embedding), cpu_e = as_tensor(cpu_embedding);
  EXPECT_TRUE(at::allclose(gpu_e, cpu_e, 1e-3, 1e-4))
      << "max difference " << (gpu_e - cpu_e).abs().max().item<float>();
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryComposition, ::testing::ValuesIn(every_composition()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.architecture + "_" + info.param.objective;
                         });

TEST(Resources, TravelWithTheModelFile) {
  const SmallData& d = small_data();
  Resources resources;
  resources["gene_sets"] = {{2, 3}, {1, 0, 1, 0, 1, 1}, {"setA", "setB"}, {"g0", "g1", "g2"}};
  resources["edges"] = {{4}, {0.5f, -1.0f, 2.0f, 3.25f}, {}, {}};
  auto model = GenerativeModel::create(tiny_spec("state_mlp", "flow"), d.source->genes(), {}, resources);
  model->train(*d.source, {}, one_epoch(), {});
  const std::string path = ::testing::TempDir() + "exprflow_resources.pt";
  model->save(path);
  auto loaded = GenerativeModel::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(loaded->resources().size(), 2u);
  for (const auto& [name, r] : resources) {
    const NamedTensor& back = loaded->resources().at(name);
    EXPECT_EQ(back.shape, r.shape) << name;
    EXPECT_EQ(back.values, r.values) << name;
    EXPECT_EQ(back.row_names, r.row_names) << name;
    EXPECT_EQ(back.column_names, r.column_names) << name;
  }
  // Sizes that disagree are errors naming the resource.
  Resources bad;
  bad["gene_sets"] = {{2, 3}, {1, 0, 1}, {}, {}};
  try {
    GenerativeModel::create(tiny_spec("state_mlp", "flow"), d.source->genes(), {}, bad);
    FAIL() << "inconsistent resource accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("resource 'gene_sets' has 3 values but its shape holds 6"), std::string::npos)
        << e.what();
  }
  bad["gene_sets"] = {{2, 3}, {1, 0, 1, 0, 1, 1}, {"only_one"}, {}};
  EXPECT_THROW(GenerativeModel::create(tiny_spec("state_mlp", "flow"), d.source->genes(), {}, bad),
               std::invalid_argument);
}

// With a learning rate of 1e-20 the weights cannot move in float32, so the
// validation loss is the same every epoch and never improves: early stopping
// with patience p ends the run after 1 + p epochs, and without it the run lasts
// all epochs. Unless the caller sets it, patience is the objective's: 10 for
// DDPM, none for flow.
TEST(Training, PatienceDefaultsToTheObjectives) {
  const SmallData& d = small_data();
  auto epochs_run = [&](const std::string& objective, double patience) {
    auto model = GenerativeModel::create(tiny_spec("state_mlp", objective), d.source->genes(), {"A", "B"});
    Options o = one_epoch();
    o.set("epochs", 13).set("learning_rate", 1e-20);
    if (patience >= 0) o.set("patience", patience);
    const TrainReport r = model->train(*d.source, d.conditions, o, {});
    return static_cast<int>(r.history.size());
  };
  EXPECT_EQ(epochs_run("ddpm", -1), 11) << "DDPM: patience 10 by default";
  EXPECT_EQ(epochs_run("flow", -1), 13) << "flow: no early stopping by default";
  EXPECT_EQ(epochs_run("flow", 2), 3) << "an explicit patience wins";
}

TEST(ArchitectureTable, OneRowPerComposition) {
  const std::vector<ArchitectureInfo> rows = GenerativeModel::architecture_table();
  ASSERT_EQ(rows.size(), GenerativeModel::architectures().size());
  for (const ArchitectureInfo& row : rows) {
    EXPECT_FALSE(row.description.empty()) << row.name;
    EXPECT_TRUE(row.space == "gene" || row.space == "latent") << row.name;
    // Only the plain VAE lacks network stages, and then it has no objective.
    EXPECT_EQ(row.tokenizer.empty(), row.name == "vae") << row.name;
    EXPECT_EQ(row.objective.empty(), row.name == "vae") << row.name;
  }
  EXPECT_EQ(GenerativeModel::default_spec("state_mlp").text("objective"), "flow");
  EXPECT_EQ(GenerativeModel::default_spec("state_mlp", "ddpm").text("objective"), "ddpm");
}

// Flow matching on a known Gaussian: x0 ~ N(mu, Sigma) in 3 dimensions with
// correlations; a small state-vector network trained by flow matching, then
// integrated from N(0, I) with Heun. Tolerances: 0.12 on each mean and 0.15 on
// each covariance entry (the data: means -1..1.5, variances 0.3..1.2,
// covariances +-0.4); the untrained network (negative control) misses them.
TEST(FlowMatching, LearnedOdeMapsNoiseToAKnownGaussian) {
  at::manual_seed(12);
  const int64_t D = 3;
  Tensor mu = at::tensor(std::vector<float>{-1.0f, 0.5f, 1.5f});
  Tensor chol = at::tensor(std::vector<float>{0.9f, 0.0f, 0.0f, 0.45f, 0.8f, 0.0f, -0.4f, 0.2f, 0.55f}).view({3, 3});
  Tensor sigma = at::matmul(chol, chol.t());  // (D, D)
  Options spec = complete_spec(Options().set("architecture", "state_mlp").set("hidden", 64).set("n_layers", 3));
  ComposedNetwork net(spec, D, std::vector<CovariateSpec>{}, 1);
  FlowMatchingObjective objective("uniform", 0.0, 1.0, false);
  const Denoiser denoiser = [&net](const Tensor& x, const Tensor& t, const Covariates& c) { return net->forward(x, t, c); };
  at::Generator g = at::detail::createCPUGenerator(3);

  auto sample_moments = [&](Tensor* mean, Tensor* cov) {
    torch::NoGradGuard no_grad;
    at::Generator sg = at::detail::createCPUGenerator(4);
    SamplerSettings s;
    s.method = "heun";
    s.steps = 30;
    Tensor x = sample(denoiser, objective, {}, 4000, D, at::kCPU, s, sg);  // (N, D)
    *mean = x.mean(0);
    Tensor centred = x - *mean;
    *cov = at::matmul(centred.t(), centred) / (x.size(0) - 1);
  };
  Tensor mean, cov;
  sample_moments(&mean, &cov);
  EXPECT_GT((mean - mu).abs().max().item<float>(), 0.5f) << "negative control: untrained net already matches";

  torch::optim::AdamW optimiser(net->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  for (int step = 0; step < 1500; ++step) {
    Tensor x0 = at::matmul(at::normal(0.0, 1.0, {256, D}, g), chol.t()) + mu;  // (B, D)
    optimiser.zero_grad();
    Tensor loss = objective.loss(denoiser, x0, {}, g).total;
    loss.backward();
    optimiser.step();
  }
  sample_moments(&mean, &cov);
  for (int64_t i = 0; i < D; ++i) {
    EXPECT_NEAR(mean[i].item<double>(), mu[i].item<double>(), 0.12) << "mean " << i;
    for (int64_t j = 0; j < D; ++j) {
      EXPECT_NEAR(cov[i][j].item<double>(), sigma[i][j].item<double>(), 0.15) << "covariance " << i << "," << j;
    }
  }
}

// A model (grn_attention unless named) trained with `setting` off, saved,
// and its file stripped of the setting, as files written before the setting
// are: it must read back as it was (same parameters, same cells). Returns the
// model.
std::unique_ptr<GenerativeModel> reads_back_without(const std::string& setting,
                                                    const std::string& architecture = "grn_attention") {
  const SmallData& d = small_data();
  auto model = GenerativeModel::create(tiny_spec(architecture, "flow").set(setting, 0), d.source->genes(), {},
                                       resources_for(architecture));
  model->train(*d.source, {}, one_epoch(architecture), {});
  TensorBundle bundle = open_generative_model_bytes(model->to_bytes(), "test bytes", /*trust_legacy=*/false);
  bundle.meta["spec"].erase(setting);
  auto old = ExpressionModel::read_model(bundle);
  EXPECT_EQ(old->parameter_count(), model->parameter_count()) << setting;
  const Options sample = Options().set("steps", 4).set("seed", 2);
  const std::vector<int> unconditional(5, -1);
  EXPECT_EQ(old->generate(unconditional, sample).counts, model->generate(unconditional, sample).counts) << setting;
  return model;
}

// Files written before the cell node have no "cell_node" and no cell token:
// they read back without one (new models have one by default).
TEST(GrnAttention, FilesFromBeforeTheCellNodeReadWithoutIt) {
  const auto model = reads_back_without("cell_node");
  auto by_default = GenerativeModel::create(tiny_spec("grn_attention", "flow"), small_data().source->genes(), {},
                                            resources_for("grn_attention"));
  EXPECT_TRUE(composition_defaults("grn_attention", "flow").flag("cell_node", false)) << "new models have the node";
  const int64_t G = static_cast<int64_t>(small_data().source->genes().size());
  EXPECT_EQ(by_default->parameter_count(), model->parameter_count() + 8 + G * 8)
      << "the cell token (token_dim,) and its start's weights (G, token_dim)";
}

// Files written before cell_node_summary have a cell node that starts as the
// genes' mean token: they read back so (new models weigh each gene).
TEST(GrnAttention, FilesFromBeforeTheCellNodeSummaryReadWithTheMean) {
  const auto model = reads_back_without("cell_node_summary");
  auto by_default = GenerativeModel::create(tiny_spec("grn_attention", "flow"), small_data().source->genes(), {},
                                            resources_for("grn_attention"));
  const int64_t G = static_cast<int64_t>(small_data().source->genes().size());
  EXPECT_EQ(by_default->parameter_count(), model->parameter_count() + G * 8) << "the start's weights (G, token_dim)";
}

// Files written before per_gene_weights have no such setting and a gene
// readout with one shared map ("linear_out"): they read back with it. A new
// model's readout holds a map per gene instead.
TEST(GrnAttention, FilesFromBeforePerGeneReadoutReadWithTheSharedMap) {
  const auto model = reads_back_without("per_gene_weights");
  const std::vector<std::string>& genes = small_data().source->genes();
  auto per_gene = GenerativeModel::create(tiny_spec("grn_attention", "flow"), genes, {}, resources_for("grn_attention"));
  const int64_t D = 8, G = static_cast<int64_t>(genes.size());
  EXPECT_EQ(per_gene->parameter_count(), model->parameter_count() - D + G * D) << "G x D weights replace D";
}

// Files written before the summary token have no "summary_token": rank,
// set and pathway tokens read back without one. A new model has one: a map
// of the genes to a token (G x D + D), the decoder's map back (D x G), and
// for rank tokens the token's position (D).
TEST(SummaryToken, FilesFromBeforeItReadWithoutIt) {
  const std::vector<std::string>& genes = small_data().source->genes();
  for (const std::string architecture : {"rank_tokens", "set_tokens", "pathway_tokens"}) {
    SCOPED_TRACE(architecture);
    const auto model = reads_back_without("summary_token", architecture);
    auto by_default =
        GenerativeModel::create(tiny_spec(architecture, "flow"), genes, {}, resources_for(architecture));
    EXPECT_TRUE(composition_defaults(architecture, "flow").flag("summary_token", false)) << "new models have it";
    const int64_t D = tiny_spec(architecture, "flow").positive("token_dim"), G = static_cast<int64_t>(genes.size());
    const int64_t position = architecture == "rank_tokens" ? D : 0;
    EXPECT_EQ(by_default->parameter_count(), model->parameter_count() + (G * D + D) + D * G + position);
  }
}

// grn_attention's blocks recompute their activations in backward from
// 10,000 genes by default ("auto"); below, the time costs more than the
// memory saves. An explicit setting wins either way.
TEST(GrnAttention, CheckpointsBlocksFromTenThousandGenes) {
  const auto checkpoints = [](int64_t genes, const Options& change) {
    const Options spec = complete_spec(tiny_spec("grn_attention", "flow").merged(change, false));
    ComposedNetwork net(spec, genes, std::vector<CovariateSpec>{}, 1, resources_for("grn_attention"));
    return dynamic_cast<DiTImpl&>(net->backbone()).checkpoints_blocks();
  };
  EXPECT_EQ(composition_defaults("grn_attention", "flow").text("activation_checkpointing"), "auto");
  EXPECT_FALSE(checkpoints(9999, Options()));
  EXPECT_TRUE(checkpoints(10000, Options()));
  EXPECT_TRUE(checkpoints(50, Options().set("activation_checkpointing", 1)));
  EXPECT_FALSE(checkpoints(10000, Options().set("activation_checkpointing", 0)));
  const std::string message = error_of([&] { checkpoints(50, Options().set("activation_checkpointing", "sometimes")); });
  EXPECT_TRUE(mentions(message, "'activation_checkpointing' must be \"auto\", true or false, got 'sometimes'"))
      << message;
}

// Conditioning reaches every gene: six conditions, each with its own mean for
// each of 64 genes, learned by flow matching, must come back from conditional
// sampling. Measured as the correlation of the sampled and the true means,
// both centred on the mean over conditions (the part the condition adds).
// state_mlp is the control. (At this size grn_attention's old shared readout
// map passes too, 0.96-0.98; on 400 genes and 9 conditions it scored
// 0.17-0.47 against 0.97-0.98 per gene: too slow for a test.)
class LearnsConditionalMeans : public ::testing::TestWithParam<std::string> {};

TEST_P(LearnsConditionalMeans, SixConditionsOverSixtyFourGenes) {
  constexpr int64_t G = 64, K = 6;
  at::manual_seed(5);
  const std::string architecture = GetParam();
  Options spec = tiny_spec(architecture, "flow");
  spec.set(architecture == "state_mlp" ? "hidden" : "token_dim", architecture == "state_mlp" ? 128 : 16);
  spec = complete_spec(spec);
  CovariateSpec condition;
  condition.name = "condition";
  condition.n_levels = K;
  ComposedNetwork net(spec, G, std::vector<CovariateSpec>{condition}, 1, resources_for(architecture));
  FlowMatchingObjective objective("uniform", 0.0, 1.0, false);
  const Denoiser denoiser = [&net](const Tensor& x, const Tensor& t, const Covariates& c) { return net->forward(x, t, c); };
  at::Generator g = at::detail::createCPUGenerator(3);
  const Tensor means = 0.8 * at::normal(0.0, 1.0, {K, G}, g);  // (K, G)
  torch::optim::AdamW optimiser(net->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  for (int step = 0; step < 600; ++step) {
    const Tensor levels = at::randint(0, K, {32}, g, at::TensorOptions().dtype(at::kLong));   // (B,)
    const Tensor x1 = means.index_select(0, levels) + 0.5 * at::normal(0.0, 1.0, {32, G}, g);  // (B, G)
    optimiser.zero_grad();
    objective.loss(denoiser, x1, {{"condition", levels}}, g).total.backward();
    optimiser.step();
  }
  torch::NoGradGuard no_grad;
  net->eval();
  const Tensor centre = means.mean(0);  // (G,)
  for (int64_t level = 0; level < K; ++level) {
    at::Generator sg = at::detail::createCPUGenerator(4);
    SamplerSettings s;
    s.steps = 20;
    const Tensor codes = at::full({200}, level, at::TensorOptions().dtype(at::kLong));
    const Tensor x = sample(denoiser, objective, {{"condition", codes}}, 200, G, at::kCPU, s, sg);  // (N, G)
    const Tensor pair = at::stack({x.mean(0) - centre, means[level] - centre});                    // (2, G)
    const float r = at::corrcoef(pair)[0][1].item<float>();
    EXPECT_GT(r, 0.9f) << architecture << ", condition " << level;
  }
}

INSTANTIATE_TEST_SUITE_P(GeneSpace, LearnsConditionalMeans, ::testing::Values("state_mlp", "grn_attention"));
