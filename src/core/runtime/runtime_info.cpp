#include "runtime/runtime_info.hpp"

#include <dlfcn.h>
#include <link.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>
#include <stdexcept>
#include <vector>

#include "exprflow/api.hpp"

namespace exprflow {

namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool contains(const std::string& text, const char* token) {
  return text.find(token) != std::string::npos;
}

bool starts_with(const std::string& text, const char* token) {
  return text.rfind(token, 0) == 0;
}

std::string resolve(const char* path) {
  char* resolved = ::realpath(path, nullptr);
  if (resolved == nullptr) return path;
  std::string out(resolved);
  std::free(resolved);
  return out;
}

// OpenBLAS and MKL win over anything else found in the process, the
// reference BLAS loses to everything: an optimised BLAS that is loaded is
// almost always the one doing the work.
int blas_rank(const std::string& name) {
  if (name == "OpenBLAS" || name == "MKL") return 3;
  if (name == "BLIS" || name == "ATLAS") return 2;
  if (name == kReferenceBlas) return 1;
  return 0;
}

struct BlasLibrary {
  std::string name;
  std::string path;
};

int collect_object(struct dl_phdr_info* info, size_t, void* data) {
  // dl_iterate_phdr is a C interface: nothing may propagate out of here.
  try {
    if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
      static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
    }
  } catch (...) {
    return 1;  // stop iterating; what was collected so far is still useful
  }
  return 0;
}

BlasLibrary detect_blas() {
  // The object that provides sgemm_ to a global lookup is the one LibTorch's
  // own calls bind to. Debian's libtorch also links libopenblas.so.0
  // directly, so merely finding OpenBLAS loaded would hide a libblas.so.3
  // alternative that points at the reference BLAS.
  std::string provider;
  if (void* symbol = ::dlsym(RTLD_DEFAULT, "sgemm_")) {
    Dl_info where{};
    if (::dladdr(symbol, &where) != 0 && where.dli_fname != nullptr) {
      provider = resolve(where.dli_fname);
      std::string name = blas_classify(provider);
      if (!name.empty()) return {name, provider};
    }
  }

  std::vector<std::string> objects;
  dl_iterate_phdr(collect_object, &objects);
  BlasLibrary best;
  for (const std::string& object : objects) {
    std::string path = resolve(object.c_str());
    std::string name = blas_classify(path);
    if (blas_rank(name) > blas_rank(best.name)) best = {name, path};
  }
  if (!best.name.empty()) return best;
  return {"unknown (statically linked or not loaded)", provider};
}

// An OpenBLAS function, looked up first in the BLAS that was found (a
// process may hold two OpenBLAS copies, and only that one runs sgemm), then
// in the global scope.
template <typename Fn>
Fn openblas_function(const std::string& library, const char* name) {
  if (!library.empty()) {
    if (void* handle = ::dlopen(library.c_str(), RTLD_LAZY | RTLD_NOLOAD)) {  // only if already loaded
      void* symbol = ::dlsym(handle, name);
      ::dlclose(handle);  // NOLOAD took a reference; the library stays loaded by its owner
      if (symbol) return reinterpret_cast<Fn>(symbol);
    }
  }
  return reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, name));
}

// How much of the CPU's vector width a core or a CPU uses: 3 AVX-512, 2 AVX2,
// 1 AVX, 0 SSE only; -1 for a core name this table does not know.
int core_rank(const std::string& core) {
  static const std::vector<std::pair<const char*, int>> ranks = {
      {"skylakex", 3}, {"cooperlake", 3}, {"sapphirerapids", 3},
      {"haswell", 2},  {"zen", 2},        {"sandybridge", 1},  {"bulldozer", 1}, {"piledriver", 1},
      {"steamroller", 1}, {"excavator", 1}, {"prescott", 0},   {"core2", 0},     {"penryn", 0},
      {"dunnington", 0}, {"nehalem", 0},  {"atom", 0},         {"katmai", 0},    {"coppermine", 0},
      {"northwood", 0}, {"banias", 0},    {"opteron", 0},      {"barcelona", 0}, {"bobcat", 0},
      {"nano", 0}};
  const std::string name = lowercase(core);
  for (const auto& [known, rank] : ranks) {
    if (name == known) return rank;
  }
  return -1;
}

}  // namespace

std::string cpu_vector_extensions() {
  static const char* const wanted[] = {"avx", "avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_tile"};
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    std::set<std::string> flags{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
    std::string out;
    for (const char* flag : wanted) {
      if (flags.count(flag)) out += (out.empty() ? "" : " ") + std::string(flag);
    }
    return out;
  }
  return "";
}

std::string openblas_core_advice(const std::string& core, const std::string& cpu_extensions) {
  const int have = core_rank(core);
  if (have < 0) return "";
  std::istringstream words(cpu_extensions);
  std::set<std::string> flags{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
  // OpenBLAS's own test for its SkylakeX kernels is AVX-512 F and BW.
  const int cpu = flags.count("avx512f") && flags.count("avx512bw") ? 3 : flags.count("avx2") ? 2 : 0;
  if (cpu <= have || cpu < 2) return "";
  return cpu == 3 ? "SkylakeX" : "Haswell";
}

std::string blas_classify(const std::string& resolved_path) {
  std::string path = lowercase(resolved_path);
  std::size_t slash = path.find_last_of('/');
  std::string file = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string folder;
  if (slash != std::string::npos && slash > 0) {
    std::size_t parent = path.find_last_of('/', slash - 1);
    folder = path.substr(parent == std::string::npos ? 0 : parent + 1,
                         slash - (parent == std::string::npos ? 0 : parent + 1));
  }

  // Everything else a process loads (libc, libtorch, the package itself) has
  // none of these in its file name.
  if (!contains(file, "blas") && !contains(file, "mkl") && !contains(file, "blis") &&
      !contains(file, "atlas")) {
    return "";
  }
  // Debian installs the alternatives as <vendor-variant>/libblas.so.3, so the
  // folder names the vendor when the file name does not.
  auto vendor = [&](const char* token) {
    return contains(file, token) || starts_with(folder, token);
  };
  if (vendor("openblas")) return "OpenBLAS";
  if (vendor("mkl")) return "MKL";
  if (vendor("blis")) return "BLIS";
  if (vendor("atlas")) return "ATLAS";
  // Netlib's libblas (Debian's blas/libblas.so.3) and R's own libRblas.
  if (starts_with(file, "libblas.") || starts_with(file, "librblas.")) return kReferenceBlas;
  return "";
}

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = std::to_string(TORCH_VERSION_MAJOR) + "." +
                       std::to_string(TORCH_VERSION_MINOR) + "." +
                       std::to_string(TORCH_VERSION_PATCH);
#ifdef EXPRFLOW_WITH_CUDA
  info.cuda_compiled = true;
#endif
  info.cuda_available = torch::cuda::is_available();
  info.cuda_device_count = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.torch_threads = at::get_num_threads();
  info.parallel_info = at::get_parallel_info();

  BlasLibrary blas = detect_blas();
  info.blas = blas.name;
  info.blas_library = blas.path;
  info.blas_is_reference = blas.name == kReferenceBlas;
  info.cpu_extensions = cpu_vector_extensions();
  if (blas.name == "OpenBLAS") {
    using CoreName = char* (*)();
    using ThreadCount = int (*)();
    if (auto corename = openblas_function<CoreName>(blas.path, "openblas_get_corename")) {
      if (const char* core = corename()) info.blas_core = core;
    }
    if (auto threads = openblas_function<ThreadCount>(blas.path, "openblas_get_num_threads")) {
      info.blas_threads = threads();
    }
    info.blas_core_advice = openblas_core_advice(info.blas_core, info.cpu_extensions);
  }
  return info;
}

void set_torch_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("the number of torch threads must be at least 1, got " +
                                std::to_string(n));
  }
  at::set_num_threads(n);
}

bool set_blas_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("the number of BLAS threads must be at least 1, got " + std::to_string(n));
  }
  const BlasLibrary blas = detect_blas();
  if (blas.name != "OpenBLAS") return false;
  using SetThreads = void (*)(int);
  auto set = openblas_function<SetThreads>(blas.path, "openblas_set_num_threads");
  if (!set) return false;
  set(n);
  return true;
}

}  // namespace exprflow
