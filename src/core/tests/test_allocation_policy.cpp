#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "exprflow/memory.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

#if defined(__GLIBC__)
// Blocks glibc currently serves by mmap(): one more for a large malloc()
// under its defaults, none while large allocations are reused.
size_t mapped_blocks() {
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
  return mallinfo2().hblks;
#else
  return static_cast<size_t>(mallinfo().hblks);
#endif
}

// Mapped blocks added by holding one 64 MiB block (above glibc's largest
// mmap threshold, 32 MiB), touched so that it cannot be optimised away.
size_t mapped_by_a_large_block() {
  const size_t before = mapped_blocks();
  const size_t bytes = size_t{64} << 20;
  auto* block = static_cast<char*>(std::malloc(bytes));
  EXPECT_NE(block, nullptr);
  std::memset(block, 1, bytes);
  const size_t during = mapped_blocks();
  std::free(block);
  return during - before;
}

#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
// Bytes the heap gives back to the system when a block of 1.5 GiB, past the
// policy's 1 GiB trim threshold, is freed at its top. The block is never
// written: the heap grows by address space alone.
size_t returned_by_freeing_a_block_past_the_threshold() {
  void* block = std::malloc(size_t{3} << 29);
  EXPECT_NE(block, nullptr);
  const size_t during = mallinfo2().arena;
  std::free(block);
  const size_t after = mallinfo2().arena;
  return during > after ? during - after : 0;
}
#endif
#endif

}  // namespace

TEST(AllocationPolicy, LargeBlocksComeFromTheHeapOnlyWhileReused) {
#if defined(__GLIBC__)
  const bool was_on = exprflow::large_allocations_reused();
  ASSERT_TRUE(exprflow::reuse_large_allocations(false));
  EXPECT_FALSE(exprflow::large_allocations_reused());
  EXPECT_EQ(mapped_by_a_large_block(), 1u);

  ASSERT_TRUE(exprflow::reuse_large_allocations(true));
  EXPECT_TRUE(exprflow::large_allocations_reused());
  EXPECT_EQ(mapped_by_a_large_block(), 0u);

  exprflow::reuse_large_allocations(was_on);
#else
  EXPECT_FALSE(exprflow::reuse_large_allocations(true));
  EXPECT_FALSE(exprflow::large_allocations_reused());
#endif
}

TEST(AllocationPolicy, TheHeapIsNotTrimmedWhileARunHoldsIt) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const bool was_on = exprflow::large_allocations_reused();
  if (!exprflow::reuse_large_allocations(true)) GTEST_SKIP() << "malloc replaced (a sanitizer build)";
  void* volatile probe = std::malloc(size_t{3} << 29);  // refused where the kernel does not overcommit
  std::free(probe);
  if (!probe) {
    exprflow::reuse_large_allocations(was_on);
    GTEST_SKIP() << "no 1.5 GiB of address space for the heap";
  }
  const size_t past_threshold = size_t{1} << 30;
  EXPECT_GT(returned_by_freeing_a_block_past_the_threshold(), past_threshold);  // trimmed
  {
    const exprflow::HeapHeldForRun run;
    EXPECT_EQ(returned_by_freeing_a_block_past_the_threshold(), 0u);
    { const exprflow::HeapHeldForRun nested; }
    EXPECT_EQ(returned_by_freeing_a_block_past_the_threshold(), 0u);  // still held by the outer run
  }
  EXPECT_GT(returned_by_freeing_a_block_past_the_threshold(), past_threshold);  // trimmed again

  // Under glibc's defaults a run leaves them alone: large blocks are still mapped.
  ASSERT_TRUE(exprflow::reuse_large_allocations(false));
  {
    const exprflow::HeapHeldForRun run;
    EXPECT_EQ(mapped_by_a_large_block(), 1u);
  }
  exprflow::reuse_large_allocations(was_on);
#else
  GTEST_SKIP() << "needs glibc 2.33 or later (mallinfo2)";
#endif
}
