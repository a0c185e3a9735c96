// Integer counts that hold a log1p-normalised value in expectation.
//
// A value h on the log1p scale, log1p(count / library x target), of a cell
// with library size l lies between the log values of two neighbouring counts
// k and k + 1; drawing k + 1 with probability (h - log(k)) / (log(k + 1) -
// log(k)) (log(k) short for k's log value) makes the expected log value of
// the count exactly h. Rounding the count itself (k + 1 with probability of
// the count's fraction) would keep its mean count instead, and the log of a
// mean is not the mean of the logs: for a cell of 2,000 counts, a value of 0.3
// would come out as 0.13 on average. Used where a prediction is made on the log
// scale (the observed response of transfer_cells(); its metrics compare
// mean log expression) and must come back as counts.
#pragma once

#include "exprflow/torch_prelude.hpp"

#include "data/expression_source.hpp"

namespace exprflow {

// (B, G) counts from `log_values` (B, G; below 0 read as 0) and `library`
// (B,) library sizes (a cell of size 0 or less has no counts: all 0), one
// uniform draw from `generator` per value. NaN is std::invalid_argument.
Tensor round_in_log_space(const Tensor& log_values, const Tensor& library, at::Generator generator,
                          double target = kNormalisationTarget);

// The same for one value and a uniform draw u in [0, 1): the plain reference
// the tensor version is tested against.
double round_in_log_space(double log_value, double library, double u, double target = kNormalisationTarget);

}  // namespace exprflow
