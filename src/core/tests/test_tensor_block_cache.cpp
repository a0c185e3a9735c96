#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>

#include "exprflow/memory.hpp"
#include "runtime/tensor_block_cache.hpp"

using namespace exprflow;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// A float tensor of `bytes` bytes (a multiple of 4), written to.
at::Tensor tensor_of(size_t bytes) { return at::ones({static_cast<int64_t>(bytes / 4)}, at::kFloat); }

}  // namespace

TEST(TensorBlockCache, SizeClassesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(tensor_block_size_class(1000), 1000u) << "small requests are not cached";
  EXPECT_EQ(tensor_block_size_class(kMiB - 1), kMiB - 1);
  EXPECT_EQ(tensor_block_size_class(kMiB), kMiB);
  EXPECT_EQ(tensor_block_size_class(kMiB + 1), kMiB + kMiB / 8);
  EXPECT_EQ(tensor_block_size_class(3 * kMiB + 5), 3 * kMiB + kMiB / 4) << "steps of 256 KiB from 2 MiB";
  for (size_t bytes = kMiB; bytes < (size_t{1} << 34); bytes = bytes * 3 / 2 + 7) {
    const size_t size_class = tensor_block_size_class(bytes);
    EXPECT_GE(size_class, bytes);
    EXPECT_LE(size_class, bytes + bytes / 8) << bytes;
    EXPECT_EQ(tensor_block_size_class(size_class), size_class) << "a class is its own class";
  }
}

TEST(TensorBlockCache, AHeldCacheHandsAFreedBlockToTheNextTensorOfItsClass) {
  ASSERT_TRUE(install_tensor_block_cache());
  hold_tensor_blocks();
  const TensorBlockCacheCounts start = tensor_block_cache_counts();
  const void* first = nullptr;
  {
    const at::Tensor a = tensor_of(2 * kMiB);
    first = a.data_ptr();
    EXPECT_EQ(tensor_block_cache_counts().in_use_bytes - start.in_use_bytes, 2 * kMiB);
  }
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes - start.kept_bytes, 2 * kMiB) << "kept, not freed";

  const at::Tensor same_class = tensor_of(2 * kMiB - 4096);
  EXPECT_EQ(same_class.data_ptr(), first);
  EXPECT_EQ(tensor_block_cache_counts().reused, start.reused + 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(same_class.data_ptr()) % 64, 0u) << "LibTorch's alignment";
  EXPECT_FLOAT_EQ(same_class.sum().item<float>(), static_cast<float>(same_class.numel())) << "a usable tensor";

  const at::Tensor other_class = tensor_of(4 * kMiB);
  EXPECT_NE(other_class.data_ptr(), first);
  EXPECT_EQ(tensor_block_cache_counts().allocated, start.allocated + 2);

  const at::Tensor small = tensor_of(4096);
  EXPECT_EQ(tensor_block_cache_counts().in_use_bytes - start.in_use_bytes, 6 * kMiB) << "small ones pass through";
  release_tensor_blocks();
}

// A last partial batch asks for the same layers' blocks a little smaller:
// it takes those the full batches left rather than keeping a set of its own.
TEST(TensorBlockCache, ARequestTakesAKeptBlockOfUpToTwiceItsClass) {
  ASSERT_TRUE(install_tensor_block_cache());
  hold_tensor_blocks();
  const void* full = nullptr;
  { const at::Tensor a = tensor_of(8 * kMiB); full = a.data_ptr(); }
  const TensorBlockCacheCounts start = tensor_block_cache_counts();
  const void* partial = nullptr;
  {
    const at::Tensor b = tensor_of(5 * kMiB);
    partial = b.data_ptr();
    EXPECT_EQ(tensor_block_cache_counts().reused_larger, start.reused_larger + 1);
    EXPECT_EQ(tensor_block_cache_counts().in_use_bytes - start.in_use_bytes, 8 * kMiB) << "the block's class";
    EXPECT_EQ(tensor_block_cache_counts().kept_bytes, start.kept_bytes - 8 * kMiB);
  }
  EXPECT_EQ(partial, full);
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes, start.kept_bytes) << "back under its own class";
  {
    const at::Tensor again = tensor_of(8 * kMiB);
    EXPECT_EQ(again.data_ptr(), full) << "the full batch finds it";
  }
  {
    const at::Tensor much_smaller = tensor_of(3 * kMiB);
    EXPECT_NE(much_smaller.data_ptr(), full) << "not a block more than twice its class";
    EXPECT_EQ(tensor_block_cache_counts().allocated, start.allocated + 1);
  }
  release_tensor_blocks();
}

// Out of memory: the request throws LibTorch's error and leaves the counts as
// they were.
TEST(TensorBlockCache, ARequestThatCannotBeMetLeavesTheCountsAsTheyWere) {
  ASSERT_TRUE(install_tensor_block_cache());
  hold_tensor_blocks();
  { const at::Tensor kept = tensor_of(2 * kMiB); }
  const TensorBlockCacheCounts before = tensor_block_cache_counts();
  const size_t beyond_any_address_space = size_t{1} << 60;
  EXPECT_THROW(c10::GetAllocator(c10::DeviceType::CPU)->allocate(beyond_any_address_space), c10::Error);
  const TensorBlockCacheCounts after = tensor_block_cache_counts();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.kept_bytes, before.kept_bytes) << "the kept block stays for its class";
  release_tensor_blocks();
}

// LibTorch's kernels take scratch buffers through raw_allocate() and give
// them back through raw_deallocate() (the GELU kernel does), which needs one
// deleter for every block and the data pointer as its context.
TEST(TensorBlockCache, RawBuffersOfEverySizeGoBackThroughTheSameDeleter) {
  ASSERT_TRUE(install_tensor_block_cache());
  c10::Allocator* allocator = c10::GetAllocator(c10::DeviceType::CPU);
  ASSERT_NE(allocator->raw_deleter(), nullptr);
  for (size_t bytes : {size_t{0}, size_t{100}, 2 * kMiB}) {
    void* buffer = allocator->raw_allocate(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer) % 64, 0u) << bytes;
    allocator->raw_deallocate(buffer);
  }
  const at::Tensor x = at::randn({300, 1000});  // above 1 MiB, through GELU's raw buffers
  EXPECT_TRUE(at::allclose(at::gelu(x), 0.5 * x * (1 + at::erf(x / std::sqrt(2.0))), 1e-5, 1e-6));
}

TEST(TensorBlockCache, NothingIsKeptOnceTheLastHolderGoes) {
  ASSERT_TRUE(install_tensor_block_cache());
  const size_t kept_before = tensor_block_cache_counts().kept_bytes;
  hold_tensor_blocks();
  at::Tensor outlives_the_run = tensor_of(3 * kMiB);
  hold_tensor_blocks();  // nested
  { const at::Tensor freed = tensor_of(2 * kMiB); }
  release_tensor_blocks();
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes, kept_before + 2 * kMiB) << "the outer holder keeps it";
  release_tensor_blocks();
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes, 0u) << "freed with the last holder";
  outlives_the_run = at::Tensor();
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes, 0u) << "freed when no run holds the cache";
}

#if defined(__GLIBC__)
// The memory policy decides: runs hold the cache only while it is on.
TEST(TensorBlockCache, RunsHoldItOnlyUnderTheReusePolicy) {
  const bool was_on = large_allocations_reused();
  const auto kept_by_a_run = [] {
    const HeapHeldForRun run;
    { const at::Tensor freed = tensor_of(2 * kMiB); }
    return tensor_block_cache_counts().kept_bytes;
  };
  ASSERT_TRUE(reuse_large_allocations(true));
  EXPECT_TRUE(tensor_block_cache_installed());
  EXPECT_GE(kept_by_a_run(), 2 * kMiB);
  EXPECT_EQ(tensor_block_cache_counts().kept_bytes, 0u);
  ASSERT_TRUE(reuse_large_allocations(false));
  EXPECT_EQ(kept_by_a_run(), 0u);
  reuse_large_allocations(was_on);
}
#endif
