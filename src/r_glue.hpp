// Shared helpers of the Rcpp glue. The glue stays thin and torch-free: it
// converts R objects to the core's torch-free API (exprflow/api.hpp) and back,
// and turns every C++ exception into an R error with a readable message.
#pragma once

#include <Rcpp.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "exprflow/api.hpp"
#include "exprflow/options.hpp"

namespace exprflow_r {

// LibTorch's exceptions carry a C++ backtrace after the message; users need
// the message only.
inline std::string clean_message(const std::string& what) {
  const char* markers[] = {"\nException raised from", "Exception raised from"};
  for (const char* marker : markers) {
    const size_t at = what.find(marker);
    if (at != std::string::npos && at > 0) return what.substr(0, at);
  }
  return what;
}

// Wraps a glue body: every std::exception becomes an R error (Rcpp::stop).
template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (Rcpp::internal::InterruptedException&) {
    throw;
  } catch (Rcpp::exception&) {
    throw;
  } catch (const std::exception& e) {
    Rcpp::stop(clean_message(e.what()));
  }
}

// A named R list -> Options: numeric, integer and logical vectors of length 1
// become numbers (TRUE/FALSE 1/0), of any other length number lists;
// character vectors likewise strings or string lists; named lists nested
// option sets. NA, NULL and other types are errors naming the setting by its
// path ('backbone.n_layers'). options_to_list reverses it (lists become
// numeric or character vectors, nested sets named lists).
exprflow::Options options_from_list(const Rcpp::List& list);
Rcpp::List options_to_list(const exprflow::Options& options);

// True if the user pressed Ctrl-C / Esc; safe to call from the main thread only.
bool interrupt_pending();

// Training callbacks that report to an R function
// `progress(step, total, loss, stage, epoch, validation_loss)` after every
// optimiser step: `stage` is the training stage ("model", or "vae" then
// "latent"), `epoch` the epochs of that stage completed so far and
// `validation_loss` the last completed epoch's (NaN before the first, or
// without a validation split). Training stops cleanly when the user
// interrupts or `progress` returns FALSE. `progress` must outlive the callbacks.
exprflow::TrainCallbacks progress_callbacks(Rcpp::Function& progress);

// A training history as a data.frame (epoch, train_loss, validation_loss
// (NA where none), learning_rate, seconds), from row `from` on.
Rcpp::DataFrame history_frame(const std::vector<exprflow::EpochRecord>& history, size_t from = 0);

// Model file bytes <-> an R raw vector (the bytes an R model object keeps).
inline Rcpp::RawVector raw_from_bytes(const std::string& bytes) {
  Rcpp::RawVector out(bytes.size());
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(RAW(out)));
  return out;
}
// A view, valid while `raw` is alive (no copy of a model's bytes).
inline std::string_view bytes_of_raw(const Rcpp::RawVector& raw) {
  return std::string_view(reinterpret_cast<const char*>(RAW(raw)), Rf_xlength(raw));
}

}  // namespace exprflow_r
