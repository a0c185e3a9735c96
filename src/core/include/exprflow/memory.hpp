#pragma once

// Memory policy of the process (runtime/allocation_policy.cpp says why). On:
// glibc's malloc keeps large blocks in its heap and reuses them instead of
// mapping fresh pages for each and unmapping them on free, and LibTorch's
// CPU allocator becomes a cache of its large blocks for the length of each
// run (HeapHeldForRun). Off: glibc's defaults, and the heap gives back what
// it kept.

namespace exprflow {

// Returns whether the policy could be set: false where the C library is not
// glibc (nothing changes there).
bool reuse_large_allocations(bool on);

// Whether reuse_large_allocations(true) is in force.
bool large_allocations_reused();

// While one of these lives (a training run, a sampling run) and the policy
// is on, the heap is never trimmed: the 1 GiB trim threshold alone let a
// step whose activations pass 1 GiB (set_tokens, 128 cells) give its pages
// back at the end of every step and fault them in again at the next. And
// LibTorch's large CPU blocks are kept whole for the next tensor of their
// size (runtime/tensor_block_cache.hpp) instead of going back to the heap,
// where blocks of changing sizes fragment it. When the last one ends, the
// policy's threshold is back and the kept blocks are freed. Nests;
// thread-safe.
class HeapHeldForRun {
 public:
  HeapHeldForRun();
  ~HeapHeldForRun();
  HeapHeldForRun(const HeapHeldForRun&) = delete;
  HeapHeldForRun& operator=(const HeapHeldForRun&) = delete;

 private:
  bool holds_tensor_blocks_ = false;
};

}  // namespace exprflow
