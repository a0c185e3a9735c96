// The training data path alone: one minibatch of synthetic droplet-like CSC
// counts (~10% non-zero) made into a CellBatch (densify, log-normalise,
// standardise; with raw counts for count likelihoods), the work every
// training step does before the network runs. Median of 50 batches.
// "separate passes" times the same expression made the way make_cell_batch
// made it before fill_standardised(): densify the counts, log-normalise the
// rows, then subtract the means and divide by the sds over the whole batch.
// Large blocks are reused as the R package does (reuse_large_allocations).
//
//   bench_data_path [--batch N] [--threads N]
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_common.hpp"
#include "command_line.hpp"
#include "data/cell_batch.hpp"
#include "exprflow/api.hpp"
#include "exprflow/memory.hpp"

using namespace exprflow;
using namespace exprflow::bench;

int main(int argc, char** argv) {
  int batch = 128, threads = 1;
  CommandLine args(argc, argv, "bench_data_path [--batch N] [--threads N]");
  batch = static_cast<int>(args.number("--batch", batch));
  threads = static_cast<int>(args.number("--threads", threads));
  args.finish();
  if (batch < 1 || threads < 1) {
    std::fprintf(stderr, "--batch and --threads must be positive\n");
    return 2;
  }
  set_torch_threads(threads);
  reuse_large_allocations(true);  // as the R package does at load
  std::printf("batch %d, %d torch thread(s)\n", batch, threads);
  for (long genes : {2000L, 20000L}) {
    const int cells = batch * 8;
    auto data = synthetic_counts(genes, cells, 3);
    const GeneStandardiser scale{at::zeros({genes}), at::ones({genes})};
    for (bool with_counts : {false, true}) {
      std::vector<double> times;
      for (int r = 0; r < 50; ++r) {
        const int lo = (r * batch) % (cells - batch);
        const auto t0 = Clock::now();
        CellBatch b = make_cell_batch(*data, cell_range(lo, lo + batch), {}, scale, with_counts, at::kCPU);
        times.push_back(seconds_since(t0));
      }
      const double t = median(times);
      std::printf("%6ld genes %-18s %8.3f ms/batch  %9.0f cells/s\n", genes,
                  with_counts ? "expression+counts" : "expression", 1e3 * t, batch / t);
    }
    std::vector<double> times;
    for (int r = 0; r < 50; ++r) {
      const int lo = (r * batch) % (cells - batch);
      const auto t0 = Clock::now();
      Tensor x = at::empty({batch, genes});  // (B, G)
      data->fill_log_normalised(cell_range(lo, lo + batch), x.data_ptr<float>());
      x.sub_(scale.mean).div_(scale.sd);
      times.push_back(seconds_since(t0));
    }
    const double t = median(times);
    std::printf("%6ld genes %-18s %8.3f ms/batch  %9.0f cells/s\n", genes, "separate passes", 1e3 * t, batch / t);
  }
  return 0;
}
