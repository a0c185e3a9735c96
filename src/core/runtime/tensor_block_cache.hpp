// A cache of LibTorch's large CPU tensor blocks for the length of a run (a
// training or sampling run: HeapHeldForRun). Installed as LibTorch's CPU
// allocator by install_tensor_block_cache(); outside a run it allocates and
// frees as LibTorch's default CPU allocator does (c10::alloc_cpu / free_cpu).
//
// Why: a training step allocates the same (cells, genes, width) activations
// every step. Served by glibc with its defaults, each block above the mmap
// threshold is a fresh mmap(): its pages are faulted in and zeroed every
// step (grn_attention trains 2.5x slower for it at 20,000 genes). Kept in
// glibc's heap instead (reuse_large_allocations without this cache), the
// blocks fragment it: the same step peaked at 5.6 GB resident against 2.1 GB.
// Here a freed block is kept under its size class and handed whole to the
// next request of that class, which a step's fixed shapes make; pages stay
// faulted in and nothing fragments: 2.9 GB, as fast as the heap alone
// (bench_compositions). When the last run ends, the kept blocks are freed.
// Fewer cells than a full batch (a last partial batch, a validation batch)
// ask for the same layers' blocks a little smaller: they take the full
// batches' kept blocks (up to twice their class) rather than keeping a set
// of their own. Before that rule, R fits on the example data (1,200 cells,
// 2,000 genes, full batches of 32 cells and two smaller shapes) kept a set
// of blocks for each and peaked higher than with the heap alone. With it
// (this build / before the rule / heap alone; inst/bench/fit_seconds.R, 2
// epochs, two runs each, the same time): grn_attention 1.25 / 1.66 /
// 1.43-1.46 GB, set_tokens 1.15 / 1.45 / 1.38; latent_mlp still peaks
// higher, 1.13 / 1.13 / 1.06.
#pragma once

#include <cstddef>
#include <cstdint>

namespace exprflow {

struct TensorBlockCacheCounts {
  size_t kept_bytes = 0;    // freed blocks waiting for a request (of their class or up to half of it)
  size_t in_use_bytes = 0;  // blocks of this cache held by live tensors
  uint64_t reused = 0;         // requests served from kept blocks
  uint64_t reused_larger = 0;  // of which from a block of a larger class
  uint64_t allocated = 0;      // requests that allocated a new block
  size_t peak_bytes = 0;       // most kept + in use at once, since the process started
};

// Makes the cache LibTorch's CPU allocator, once per process. Returns
// whether it is (false where another allocator of higher priority holds
// the CPU). Tensors allocated before keep their own allocator.
bool install_tensor_block_cache();
bool tensor_block_cache_installed();

// Holders (nest; thread-safe): while there is one, freed large blocks are
// kept. The last one to go frees what is kept.
void hold_tensor_blocks();
void release_tensor_blocks();

// Off: holders keep nothing and the cache passes every block through
// (bench_compositions --no-block-cache measures what it gains). On by default.
void keep_tensor_blocks(bool on);

// The size class of a request of `bytes`: requests of 1 MiB and more round
// up to one of 8 steps per power of two (at most 12.5% more); smaller ones
// are not cached (returned as they are). A request takes a kept block of its
// class, else of the smallest kept class up to twice its own.
size_t tensor_block_size_class(size_t bytes);

TensorBlockCacheCounts tensor_block_cache_counts();

}  // namespace exprflow
