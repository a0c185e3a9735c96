#pragma once

// Memory policy of the process (runtime/allocation_policy.cpp says why). On:
// glibc's malloc keeps large blocks in its heap and reuses them instead of
// mapping fresh pages for each (LibTorch's CPU activations) and unmapping
// them on free. Off: glibc's defaults, and the heap gives back what it kept.

namespace exprflow {

// Returns whether the policy could be set: false where the C library is not
// glibc (nothing changes there).
bool reuse_large_allocations(bool on);

// Whether reuse_large_allocations(true) is in force.
bool large_allocations_reused();

}  // namespace exprflow
