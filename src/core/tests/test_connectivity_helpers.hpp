// Shared fixtures of the connectivity tests: small synthetic region data
// (regions x genes in [0, 1], coordinates) and tiny model settings.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "exprflow/connectivity.hpp"

namespace exprflow {
namespace testing_connectivity {

// Regions sit on a line in space; region r's expression follows a smooth
// profile whose phase depends on r, so regions near each other correlate.
inline RegionData synthetic_regions(int n_regions, int n_genes, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> noise(-0.08f, 0.08f);
  RegionData d;
  d.n_regions = n_regions;
  d.n_genes = n_genes;
  for (int r = 0; r < n_regions; ++r) {
    const float phase = 6.2831853f * r / n_regions;
    for (int g = 0; g < n_genes; ++g) {
      float v = 0.5f + 0.35f * std::sin(phase + 0.7f * g) + noise(rng);
      d.expression.push_back(std::min(1.0f, std::max(0.0f, v)));
    }
    d.coords.push_back(10.0f * r);
    d.coords.push_back(-3.0f * r + 2.0f);
    d.coords.push_back(5.0f * std::cos(phase));
  }
  return d;
}

inline GeneEmbedding synthetic_embedding(int n_genes, int dim, int every_missing = 4, uint64_t seed = 3) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  GeneEmbedding e;
  e.n_genes = n_genes;
  e.dim = dim;
  for (int g = 0; g < n_genes; ++g) {
    const bool missing = every_missing > 0 && g % every_missing == every_missing - 1;
    e.has_vector.push_back(missing ? 0 : 1);
    for (int k = 0; k < dim; ++k) e.values.push_back(missing ? NAN : normal(rng));
  }
  return e;
}

// Pearson correlation of two regions' expression: a learnable target.
inline float region_correlation(const RegionData& d, int a, int b) {
  const int G = d.n_genes;
  double ma = 0, mb = 0;
  for (int g = 0; g < G; ++g) {
    ma += d.expression[a * G + g] / G;
    mb += d.expression[b * G + g] / G;
  }
  double sab = 0, saa = 0, sbb = 0;
  for (int g = 0; g < G; ++g) {
    const double x = d.expression[a * G + g] - ma, y = d.expression[b * G + g] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return static_cast<float>(sab / std::sqrt(saa * sbb));
}

// Every ordered pair (i, j), i != j, with the correlation target.
inline RegionPairs all_pairs(const RegionData& d) {
  RegionPairs p;
  for (int i = 0; i < d.n_regions; ++i) {
    for (int j = 0; j < d.n_regions; ++j) {
      if (i == j) continue;
      p.i.push_back(i);
      p.j.push_back(j);
      p.target.push_back(region_correlation(d, i, j));
    }
  }
  return p;
}

inline Options tiny_spec(const std::string& architecture) {
  Options o;
  o.set("architecture", architecture).set("d_model", 16).set("n_layers", 2).set("n_heads", 2)
      .set("head_hidden", "32,16").set("mlp_ratio", 2).set("seed", 11);
  if (architecture == "self_attention_chunks" || architecture == "self_attention_chunks_pooled") {
    o.set("chunk_size", 8);
  }
  return o;
}

}  // namespace testing_connectivity
}  // namespace exprflow
