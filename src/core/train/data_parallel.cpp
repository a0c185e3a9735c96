#include "train/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#if EXPRFLOW_HAS_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // ProcessGroupGloo.hpp declares its class only under it
#endif
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace exprflow {

GroupSettings GroupSettings::from(const Options& options) {
  GroupSettings s;
  s.store = options.text("group_store");
  s.rank = static_cast<int>(options.integer("group_rank"));
  s.size = static_cast<int>(options.integer("group_size"));
  s.timeout_seconds = options.number("group_timeout");
  if (s.size < 1) throw std::invalid_argument("group_size must be at least 1");
  if (s.rank < 0 || s.rank >= s.size) {
    throw std::invalid_argument("group_rank must be in [0, group_size - 1], got " + std::to_string(s.rank));
  }
  if (!(s.timeout_seconds > 0)) throw std::invalid_argument("group_timeout must be positive");
  if (s.size > 1 && s.store.rfind("file:", 0) != 0 && s.store.rfind("tcp:", 0) != 0 &&
      s.store.rfind("tcp-client:", 0) != 0) {
    throw std::invalid_argument("group_store must be 'file:<path>', 'tcp:<host>:<port>' or "
                                "'tcp-client:<host>:<port>', got '" + s.store + "'");
  }
  return s;
}

std::pair<size_t, size_t> rank_cells(size_t lo, size_t hi, long batch_size, int rank) {
  const size_t begin = std::min(hi, lo + static_cast<size_t>(rank) * batch_size);
  return {begin, std::min(hi, begin + static_cast<size_t>(batch_size))};
}

double all_reduce_gradients(DataParallelGroup& group, const std::vector<Tensor>& params, double loss_sum) {
  torch::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  parts.reserve(params.size() + 1);
  for (const Tensor& p : params) {
    const Tensor g = p.grad().defined() ? p.grad() : at::zeros_like(p);
    parts.push_back(g.reshape({-1}).to(at::kCPU, at::kFloat));
  }
  parts.push_back(at::full({1}, loss_sum, at::TensorOptions().dtype(at::kFloat)));
  Tensor flat = at::cat(parts).contiguous();  // (P + 1,)
  group.all_reduce_sum(flat);
  int64_t offset = 0;
  for (const Tensor& p : params) {
    const Tensor summed = flat.slice(0, offset, offset + p.numel()).view(p.sizes()).to(p.device(), p.scalar_type());
    offset += p.numel();
    Tensor param = p;
    if (param.grad().defined()) {
      param.mutable_grad().copy_(summed);
    } else {
      param.mutable_grad() = summed.clone();
    }
  }
  return flat[offset].item<double>();
}

bool any_rank(DataParallelGroup& group, bool stop) {
  Tensor flag = at::full({1}, stop ? 1.0f : 0.0f);
  group.all_reduce_sum(flag);
  return flag.item<float>() > 0;
}

double all_reduce_mean(DataParallelGroup& group, double sum, double count) {
  Tensor both = at::tensor({sum, count}, at::TensorOptions().dtype(at::kDouble));
  group.all_reduce_sum(both);
  return both[0].item<double>() / both[1].item<double>();
}

namespace {

// (R, n) every rank's `row` ((n,), the same n on every rank), in rank order:
// a gather as a sum, each rank filling its own row of zeros, so the group
// needs no collective beyond all-reduce. `dtype` must hold the values exactly.
Tensor rows_of_every_rank(DataParallelGroup& group, const Tensor& row, at::ScalarType dtype) {
  Tensor rows = at::zeros({group.size(), row.numel()}, at::TensorOptions().dtype(dtype));  // (R, n)
  rows[group.rank()].copy_(row.reshape({-1}));
  group.all_reduce_sum(rows);
  return rows;
}

}  // namespace

bool same_on_every_rank(DataParallelGroup& group, const std::vector<double>& values) {
  const Tensor rows = rows_of_every_rank(group, at::tensor(values, at::TensorOptions().dtype(at::kDouble)),
                                         at::kDouble);  // (R, n)
  return at::equal(rows, rows[0].unsqueeze(0).expand_as(rows));
}

std::vector<Tensor> gather_bytes(DataParallelGroup& group, const Tensor& bytes) {
  const Tensor rows = rows_of_every_rank(group, bytes, at::kInt);  // (R, S); bytes are exact in int32
  std::vector<Tensor> out;
  for (int r = 0; r < group.size(); ++r) out.push_back(rows[r].to(at::kByte).clone());
  return out;
}

#if EXPRFLOW_HAS_GLOO

namespace {

class GlooGroup final : public DataParallelGroup {
 public:
  explicit GlooGroup(const GroupSettings& s) : rank_(s.rank), size_(s.size) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(s.timeout_seconds * 1000));
    c10::intrusive_ptr<c10d::Store> store;
    std::string host = "127.0.0.1";
    if (s.store.rfind("file:", 0) == 0) {
      store = c10::make_intrusive<c10d::FileStore>(s.store.substr(5), s.size);
    } else {
      // "tcp-client:": a launcher serves the store (torchrun's agent), so
      // rank 0 connects like the others, and exprflow's keys get their own
      // prefix beside the launcher's.
      const bool client_only = s.store.rfind("tcp-client:", 0) == 0;
      const std::string address = s.store.substr(client_only ? 11 : 4);
      const size_t colon = address.rfind(':');
      const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
      if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
          std::stoi(port) > 65535) {
        throw std::invalid_argument("group_store 'tcp:' / 'tcp-client:' needs <host>:<port> with a port number, got '" +
                                    s.store + "'");
      }
      host = address.substr(0, colon);
      c10d::TCPStoreOptions options;
      options.port = static_cast<uint16_t>(std::stoi(port));
      options.isServer = s.rank == 0 && !client_only;
      options.numWorkers = s.size;
      options.timeout = timeout;
      store = c10::make_intrusive<c10d::TCPStore>(host, options);
      if (client_only) store = c10::make_intrusive<c10d::PrefixStore>("exprflow", store);
    }
    store->setTimeout(timeout);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->timeout = timeout;
    // The ranks' own interface: loopback when they share this machine (a
    // file store, or a TCP store on loopback), else the one that reaches
    // the master's host.
    const bool one_machine = s.store.rfind("file:", 0) == 0 || host == "127.0.0.1" || host == "localhost";
    options->devices.push_back(one_machine ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, s.rank, s.size, options);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // Through CPU copies: Gloo's collectives take CPU tensors (a CUDA model's
  // weights are staged through the host, as the gradients are).
  void broadcast(std::vector<Tensor>& tensors) override {
    torch::NoGradGuard no_grad;
    for (Tensor& t : tensors) {
      std::vector<Tensor> one{t.to(at::kCPU).contiguous()};
      run("broadcast", [&] { return group_->broadcast(one); });
      t.copy_(one[0]);
    }
  }

  void all_reduce_sum(Tensor& flat) override {
    std::vector<Tensor> one{flat};
    run("all-reduce", [&] { return group_->allreduce(one); });
  }

 private:
  // A collective that fails (a rank stopped, a timeout) says so in plain words.
  template <typename Start>
  void run(const char* what, Start&& start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("data-parallel training: rank ") + std::to_string(rank_) + " of " +
                               std::to_string(size_) + " lost the group during a " + what +
                               " (another process stopped or timed out): " + e.what());
    }
  }

  int rank_, size_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

bool data_parallel_available() { return true; }

std::shared_ptr<DataParallelGroup> join_group(const GroupSettings& settings) {
  if (settings.size == 1) return nullptr;
  try {
    return std::make_shared<GlooGroup>(settings);
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error("data-parallel training: rank " + std::to_string(settings.rank) + " could not join " +
                             std::to_string(settings.size) + " processes through '" + settings.store +
                             "': " + e.what());
  }
}

#else

bool data_parallel_available() { return false; }

std::shared_ptr<DataParallelGroup> join_group(const GroupSettings& settings) {
  if (settings.size == 1) return nullptr;
  throw std::runtime_error(
      "this exprflow was built without Gloo, so it cannot train across processes: install the Gloo headers "
      "(Debian: apt-get install libgloo-dev) and reinstall exprflow");
}

#endif

}  // namespace exprflow
