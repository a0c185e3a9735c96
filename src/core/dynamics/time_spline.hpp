// Paths through a chain of cells observed at K times: the natural cubic
// spline through the chain's points (multi-marginal flow matching: a path that
// bends as the population's course bends), a cubic Hermite path with local
// three-point tangents (bends too, but a noisy cell bends only its own two
// segments), or the straight segments between consecutive points (pairwise
// OT-CFM). A population flow regresses its
// velocity field on these paths' derivatives.
#pragma once

#include <string>
#include <vector>

#include "exprflow/torch_prelude.hpp"

namespace exprflow {

class TimePaths {
 public:
  // knots: the K >= 2 observed times (increasing); kind "hermite", "spline" or "linear".
  TimePaths(std::vector<double> knots, std::string kind);

  struct Point {
    Tensor position;  // (B, d)
    Tensor velocity;  // (B, d): derivative in time
  };
  // chains (B, K, d) at times tau (B,), each within [knots.front(), knots.back()].
  Point at(const Tensor& chains, const Tensor& tau) const;

  const std::string& kind() const { return kind_; }

 private:
  std::vector<double> knots_;
  std::string kind_;
  // (K, K), applied to the knot values: the spline's second derivatives, the
  // Hermite path's tangents, zeros for "linear".
  Tensor knot_map_;
};

}  // namespace exprflow
