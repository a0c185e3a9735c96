#include "runtime/tensor_block_cache.hpp"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace exprflow {

namespace {

// LibTorch aligns CPU blocks to 64 bytes; a header in front of each block
// (its size class) keeps that alignment for the tensor's data. Every block,
// small ones too, has the header and one deleter: LibTorch's kernels take raw
// buffers through raw_allocate() / raw_deallocate(), which need the data
// pointer to be the deleter's context and the same deleter for all blocks.
constexpr size_t kHeaderBytes = 64;
constexpr size_t kSmallestCached = size_t{1} << 20;
constexpr int kLog2StepsPerPowerOfTwo = 3;  // 8 size classes per power of two
// A request takes a kept block of a larger class up to this many times its
// own: a last partial batch or a validation batch (fewer cells, the same
// layers) then reuses the blocks that full batches left, instead of keeping
// a set of each. Found in R (grn_attention, example data: full batches of
// 32 cells and two smaller shapes): 871 MB were kept at the end of the fit
// without it, a set of blocks for each shape.
constexpr size_t kLargestReuseFactor = 2;

struct Header {
  size_t class_bytes;  // 0: a small block, never kept
};

void* block_of(void* data) { return static_cast<char*>(data) - kHeaderBytes; }

struct State {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> kept;  // class bytes -> blocks (header first); none empty
  int holders = 0;
  bool keeping = true;  // keep_tensor_blocks()
  TensorBlockCacheCounts counts;
};

State& state() {
  static State* s = new State();  // never destroyed: tensors may be freed during exit
  return *s;
}

// Under the mutex, after a new block is counted in use.
void note_peak(State& s) {
  const size_t total = s.counts.in_use_bytes + s.counts.kept_bytes;
  if (total > s.counts.peak_bytes) s.counts.peak_bytes = total;
}

// Frees every kept block; under the mutex.
void free_kept(State& s) {
  for (auto& entry : s.kept) {
    for (void* block : entry.second) c10::free_cpu(block);
  }
  s.kept.clear();
  s.counts.kept_bytes = 0;
}

void give_back(void* data) {
  void* block = block_of(data);
  const size_t bytes = static_cast<Header*>(block)->class_bytes;
  if (bytes == 0) {
    c10::free_cpu(block);
    return;
  }
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.counts.in_use_bytes -= bytes;  // the block's class, which may be larger than its request's
  if (s.holders == 0 || !s.keeping) {
    c10::free_cpu(block);
    return;
  }
  s.kept[bytes].push_back(block);
  s.counts.kept_bytes += bytes;
}

// LibTorch 2.3 made Allocator::allocate() non-const and added a pure
// copy_data(); 1.13 has allocate() const and no copy_data(). Both forms of
// allocate() are defined, without `override`, so that whichever the base
// declares is overridden (a class left abstract would not compile).
class TensorBlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const { return block_for(bytes); }
  c10::DataPtr allocate(size_t bytes) { return block_for(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const { return &give_back; }

 private:
  static c10::DataPtr block_for(size_t bytes) {
    const bool cached = bytes >= kSmallestCached;
    const size_t class_bytes = cached ? tensor_block_size_class(bytes) : bytes;
    void* block = cached ? take(class_bytes) : nullptr;
    if (!block) {
      try {
        block = c10::alloc_cpu(class_bytes + kHeaderBytes);
      } catch (...) {  // out of memory: the block take() counted is not in use
        if (cached) forget(class_bytes);
        throw;
      }
      static_cast<Header*>(block)->class_bytes = cached ? class_bytes : 0;
    }
    void* data = static_cast<char*>(block) + kHeaderBytes;
    return {data, data, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  static void forget(size_t class_bytes) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.counts.in_use_bytes -= class_bytes;
  }

  // The kept block of the smallest class from `class_bytes` to
  // kLargestReuseFactor times it, or nullptr: the caller allocates one of
  // `class_bytes`, counted in use here.
  static void* take(size_t class_bytes) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto found = s.kept.lower_bound(class_bytes);
    if (found == s.kept.end() || found->first / kLargestReuseFactor > class_bytes) {
      ++s.counts.allocated;
      s.counts.in_use_bytes += class_bytes;
      note_peak(s);
      return nullptr;
    }
    const size_t block_bytes = found->first;
    void* block = found->second.back();
    found->second.pop_back();
    if (found->second.empty()) s.kept.erase(found);
    s.counts.kept_bytes -= block_bytes;
    s.counts.in_use_bytes += block_bytes;
    ++s.counts.reused;
    if (block_bytes != class_bytes) ++s.counts.reused_larger;
    return block;
  }
};

std::atomic<bool> installed{false};

}  // namespace

size_t tensor_block_size_class(size_t bytes) {
  if (bytes < kSmallestCached) return bytes;
  const int top_bit = 63 - __builtin_clzll(bytes);  // bytes >= 1 MiB: not 0
  const size_t step = size_t{1} << (top_bit - kLog2StepsPerPowerOfTwo);
  return (bytes + step - 1) / step * step;
}

bool install_tensor_block_cache() {
  static std::once_flag once;
  std::call_once(once, [] {
    static TensorBlockCache* cache = new TensorBlockCache();
    c10::SetAllocator(c10::DeviceType::CPU, cache);
    installed = c10::GetAllocator(c10::DeviceType::CPU) == cache;
  });
  return installed;
}

bool tensor_block_cache_installed() { return installed; }

void hold_tensor_blocks() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.holders;
}

void release_tensor_blocks() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.holders == 0) free_kept(s);
}

void keep_tensor_blocks(bool on) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.keeping = on;
  if (!on) free_kept(s);
}

TensorBlockCacheCounts tensor_block_cache_counts() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.counts;
}

}  // namespace exprflow
