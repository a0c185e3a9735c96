#include "runtime/runtime_info.hpp"

#include <dlfcn.h>
#include <link.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
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

}  // namespace

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
  return info;
}

void set_torch_threads(int n) {
  if (n < 1) {
    throw std::invalid_argument("the number of torch threads must be at least 1, got " +
                                std::to_string(n));
  }
  at::set_num_threads(n);
}

}  // namespace exprflow
