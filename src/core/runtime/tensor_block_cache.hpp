// A cache of LibTorch's large CPU tensor blocks for the length of a run (a
// training or sampling run: HeapHeldForRun). Installed as LibTorch's CPU
// allocator by install_tensor_block_cache(); outside a run it hands every
// request to the allocator it replaced.
//
// Why: a training step allocates the same (cells, genes, width) activations
// every step. Served by glibc with its defaults, each block above the mmap
// threshold is a fresh mmap(): its pages are faulted in and zeroed every
// step (grn_attention trains 2.5x slower for it at 20,000 genes). Kept in
// glibc's heap instead (reuse_large_allocations without this cache), the
// blocks fragment it: the same step peaked at 5.6 GB resident against 2.1 GB.
// Here a freed block is kept under its size class and handed whole to the
// next request of that class, which a step's fixed shapes make; pages stay
// faulted in and nothing fragments: 3.0 GB, as fast as the heap alone
// (bench_compositions). When the last run ends, the kept blocks are freed.
// On small data it costs memory instead: blocks kept under one class wait
// while other shapes (validation batches, a last partial batch) take new
// ones. R fits on the example data (1,200 cells, 2,000 genes, batch 32)
// peaked 1-16% higher (grn_attention 1.66 against 1.43 GB; set_tokens
// 1.45 / 1.38; latent_mlp 1.13 / 1.12; inst/bench/fit_seconds.R), in about
// the same time. Releasing classes unused for a step would be the next try.
#pragma once

#include <cstddef>
#include <cstdint>

namespace exprflow {

struct TensorBlockCacheCounts {
  size_t kept_bytes = 0;    // freed blocks waiting for a request of their class
  size_t in_use_bytes = 0;  // blocks of this cache held by live tensors
  uint64_t reused = 0;      // requests served from kept blocks
  uint64_t allocated = 0;   // requests that allocated a new block
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

// The size class a request of `bytes` is served from: requests of 1 MiB and
// more round up to one of 8 steps per power of two (at most 12.5% more);
// smaller ones are not cached (returned as they are).
size_t tensor_block_size_class(size_t bytes);

TensorBlockCacheCounts tensor_block_cache_counts();

}  // namespace exprflow
