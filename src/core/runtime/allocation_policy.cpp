#include "exprflow/memory.hpp"

#include <atomic>
#include <mutex>

#include "runtime/tensor_block_cache.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace exprflow {

namespace {

std::atomic<bool> reused{false};

#if defined(__GLIBC__)
// glibc serves every block above its mmap threshold (at most 32 MiB) with a
// fresh mmap() and returns it with munmap() on free, and trims free memory
// at the top of its heap above 128 KiB. A training step of a per-gene token
// model allocates many (cells, genes, width) activations of tens of MiB, so
// every step faults in and zeroes hundreds of MiB of new pages: on this
// project's 2-core VM the kernel's page-fault path took a fifth of a
// set_tokens step, and reusing the blocks made its training 9x faster
// (grn_attention 4x; src/core/bench/bench_compositions.cpp, --malloc-default
// for the old way).
// No mmap() for large blocks, and trimming only past 1 GiB of free memory at
// the heap's top: freed activations are reused by the next step.
// Kept in the heap, blocks of changing sizes fragment it: a grn_attention
// step at 20,000 genes (32 cells) peaked at 5.6 GB resident against 2.1 GB
// under glibc's defaults. So during a run (HeapHeldForRun) LibTorch's large
// blocks bypass the heap's free lists: the tensor block cache
// (runtime/tensor_block_cache.hpp) keeps each whole for the next tensor of
// its size class. The same step then peaked at 2.9 GB and trained as fast
// as with the heap alone, 2.5x as fast as under glibc's defaults
// (bench_compositions, --no-block-cache, --malloc-default; one run, nothing
// else running).
// The cache does not make the no-mmap half redundant: with the cache but
// glibc's mmap (a scratch bench_compositions build, 2,000 genes, two runs
// each) set_tokens trained at 143-148 against 171-177 cells/s and the vae at
// 6,900 against 9,400 (its (128, 2,000) float batches are just under the
// cache's 1 MiB, so glibc maps each afresh); grn_attention at 20,000 genes
// was as fast and as large either way.
constexpr int kTrimThresholdBytes = 1 << 30;
// glibc's documented defaults, restored when the policy is switched off
// (but for its sliding mmap threshold, which any mallopt() call fixes at its
// current value).
constexpr int kDefaultMmapMax = 65536;
constexpr int kDefaultTrimThresholdBytes = 128 * 1024;

// Runs holding the heap (HeapHeldForRun), under their mutex.
std::mutex held_mutex;
int held_runs = 0;
#endif

}  // namespace

bool reuse_large_allocations(bool on) {
#if defined(__GLIBC__)
  // The cache stays installed once it is (LibTorch's allocator cannot be
  // swapped back safely); off, runs no longer hold it and it keeps nothing.
  if (on) install_tensor_block_cache();
  const bool set = on ? (mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes) == 1)
                      : (mallopt(M_MMAP_MAX, kDefaultMmapMax) == 1 &&
                         mallopt(M_TRIM_THRESHOLD, kDefaultTrimThresholdBytes) == 1);
  if (!on) malloc_trim(0);  // give back what the heap kept
  if (set) reused = on;
  return set;
#else
  (void)on;
  return false;
#endif
}

bool large_allocations_reused() { return reused; }

// Found in R (perf and strace of a set_tokens fit on the example data, 2,000
// genes, 128 cells a step): each step freed more than 1 GiB, so glibc
// trimmed the heap with brk() at the end of every step and the next step
// zeroed the pages again (clear_page ~12% of the profile); held, the fit ran
// 1.66x faster (inst/bench/fit_seconds.R). bench_compositions' heap never
// left 1 GiB free at its top, so it did not show this.
HeapHeldForRun::HeapHeldForRun() {
#if defined(__GLIBC__)
  std::lock_guard<std::mutex> lock(held_mutex);
  if (held_runs++ == 0 && reused) mallopt(M_TRIM_THRESHOLD, -1);  // -1: never trim (man mallopt)
  holds_tensor_blocks_ = reused;
  if (holds_tensor_blocks_) hold_tensor_blocks();
#endif
}

HeapHeldForRun::~HeapHeldForRun() {
#if defined(__GLIBC__)
  std::lock_guard<std::mutex> lock(held_mutex);
  // The next free() past the threshold trims what the run kept.
  if (--held_runs == 0 && reused) mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes);
  if (holds_tensor_blocks_) release_tensor_blocks();
#endif
}

}  // namespace exprflow
