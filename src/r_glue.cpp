#include "r_glue.hpp"

#include <algorithm>
#include <cmath>

#include <R_ext/Utils.h>

namespace exprflow_r {

exprflow::Options options_from_list(const Rcpp::List& list) {
  exprflow::Options options;
  if (list.size() == 0) return options;
  Rcpp::CharacterVector names = list.names();
  for (R_xlen_t i = 0; i < list.size(); ++i) {
    const std::string key = Rcpp::as<std::string>(names[i]);
    SEXP value = list[i];
    if (Rf_length(value) != 1) Rcpp::stop("setting '%s' must be a single value", key);
    switch (TYPEOF(value)) {
      case REALSXP:
      case INTSXP:
      case LGLSXP: {
        const double v = Rcpp::as<double>(value);
        if (ISNA(v) || ISNAN(v)) Rcpp::stop("setting '%s' must not be NA", key);
        options.set(key, v);
        break;
      }
      case STRSXP:
        if (STRING_ELT(value, 0) == NA_STRING) Rcpp::stop("setting '%s' must not be NA", key);
        options.set(key, Rcpp::as<std::string>(value));
        break;
      default:
        Rcpp::stop("setting '%s' must be a number, logical or string", key);
    }
  }
  return options;
}

Rcpp::List options_to_list(const exprflow::Options& options) {
  Rcpp::List out;
  for (const auto& kv : options.values()) {
    if (kv.second.is_number) {
      out[kv.first] = kv.second.number;
    } else {
      out[kv.first] = kv.second.text;
    }
  }
  return out;
}

namespace {
void check_interrupt_callback(void*) { R_CheckUserInterrupt(); }
}  // namespace

bool interrupt_pending() {
  // R_CheckUserInterrupt longjmps on an interrupt; R_ToplevelExec contains it.
  return R_ToplevelExec(check_interrupt_callback, nullptr) == FALSE;
}

Rcpp::DataFrame history_frame(const std::vector<exprflow::EpochRecord>& history, size_t from) {
  const size_t n = history.size() - std::min(from, history.size());
  Rcpp::IntegerVector epoch(n);
  Rcpp::NumericVector train(n), validation(n), lr(n), seconds(n);
  for (size_t k = 0; k < n; ++k) {
    const exprflow::EpochRecord& r = history[from + k];
    epoch[k] = r.epoch;
    train[k] = r.train_loss;
    validation[k] = std::isnan(r.validation_loss) ? NA_REAL : r.validation_loss;
    lr[k] = r.learning_rate;
    seconds[k] = r.seconds;
  }
  return Rcpp::DataFrame::create(Rcpp::Named("epoch") = epoch, Rcpp::Named("train_loss") = train,
                                 Rcpp::Named("validation_loss") = validation,
                                 Rcpp::Named("learning_rate") = lr, Rcpp::Named("seconds") = seconds);
}

}  // namespace exprflow_r
