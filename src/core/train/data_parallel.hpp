// Data-parallel training across processes on LibTorch's c10d: a Gloo
// process group (CPU tensors; LibTorch has no C++ DistributedDataParallel
// module, so the trainer does its collectives itself: parameters broadcast
// from rank 0 when training starts, and one all-reduce per step of every
// gradient flattened into one buffer with the step's loss appended, then a
// one-element all-reduce of a stop vote; at each checkpoint, a gather of
// every rank's generator states, which rank 0 writes while the others wait
// in the next collective: a checkpoint must be written within the group's
// timeout).
//
// Ranks meet through a c10d store: a FileStore (a file every rank can see:
// one machine, or a shared file system) or a TCPStore (rank 0 listens on
// host:port; torchrun's MASTER_ADDR / MASTER_PORT). A rank that stops
// (killed, crashed) makes the others fail with an error within the timeout
// instead of hanging.
//
// Built where the Gloo headers are (Debian: libgloo-dev); elsewhere
// join_group() says how to get them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exprflow/api.hpp"
#include "exprflow/options.hpp"
#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class DataParallelGroup {
 public:
  virtual ~DataParallelGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank's `tensors` become rank 0's (in place).
  virtual void broadcast(std::vector<Tensor>& tensors) = 0;
  // Every rank's `flat` (a contiguous CPU tensor) becomes the sum over ranks.
  virtual void all_reduce_sum(Tensor& flat) = 0;
};

struct GroupSettings {
  int rank = 0, size = 1;
  std::string store;          // "file:<path>", "tcp:<host>:<port>" (rank 0 serves) or
                              // "tcp-client:<host>:<port>" (a launcher serves)
  double timeout_seconds = 300;
  // The group's options of a training call: group_store (""; one process),
  // group_rank, group_size, group_timeout.
  static GroupSettings from(const Options& options);
};

// Joins the group (blocks until every rank has); null when settings.size == 1.
// Throws std::invalid_argument for bad settings and std::runtime_error when
// exprflow was built without Gloo or the ranks do not meet within the timeout.
std::shared_ptr<DataParallelGroup> join_group(const GroupSettings& settings);

// Whether this build can train across processes: data_parallel_available()
// in exprflow/api.hpp.

// ---- the trainer's collectives (train/trainer.cpp) ----
// A minibatch of `size` ranks is `size` per-rank minibatches of batch_size
// cells, rank r taking cells [lo + r * batch_size, ...) of the global one
// [lo, hi): the half-open range of `rank`'s cells (empty when the last global
// minibatch is too short to reach it).
std::pair<size_t, size_t> rank_cells(size_t lo, size_t hi, long batch_size, int rank);

// Sums every parameter's gradient over the ranks, each rank's having been
// weighted by its share of the global minibatch (so the result is the
// gradient of the global minibatch's mean loss), in one all-reduce that also
// sums `loss_sum` (this rank's loss summed over its cells), which is
// returned. A parameter without a gradient contributes zeros and gets one.
double all_reduce_gradients(DataParallelGroup& group, const std::vector<Tensor>& params, double loss_sum);

// Whether any rank says `stop` (e.g. its user interrupted it).
bool any_rank(DataParallelGroup& group, bool stop);

// (sum over ranks of `sum`) / (sum over ranks of `count`).
double all_reduce_mean(DataParallelGroup& group, double sum, double count);

// Every rank's `bytes` ((S,) uint8, the same S on every rank, e.g. a
// generator's state), in rank order, on every rank: for checkpoints, which
// rank 0 writes with each rank's random state.
std::vector<Tensor> gather_bytes(DataParallelGroup& group, const Tensor& bytes);

// Whether every rank holds the same `values` (the same count on every rank).
bool same_on_every_rank(DataParallelGroup& group, const std::vector<double>& values);

}  // namespace exprflow
