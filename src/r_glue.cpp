#include "r_glue.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <R_ext/Utils.h>

namespace exprflow_r {

namespace {

// One R value -> one setting of `options` under `key`; `name` is the full
// path ('backbone.n_layers') for messages. Length-1 vectors are scalars,
// other lengths lists, named lists nested option sets.
void set_from_r(exprflow::Options& options, const std::string& key, const std::string& name, SEXP value);

exprflow::Options options_from_list_at(const Rcpp::List& list, const std::string& prefix) {
  exprflow::Options options;
  if (list.size() == 0) return options;
  SEXP names = Rf_getAttrib(list, R_NamesSymbol);
  if (Rf_isNull(names)) {
    if (prefix.empty()) Rcpp::stop("settings must be a named list");
    Rcpp::stop("setting '%s' must be a named list (nested settings) or a vector", prefix.substr(0, prefix.size() - 1));
  }
  for (R_xlen_t i = 0; i < list.size(); ++i) {
    SEXP name_sexp = STRING_ELT(names, i);
    const std::string key = name_sexp == NA_STRING ? "" : Rf_translateCharUTF8(name_sexp);
    if (key.empty()) {
      const std::string where = prefix.empty() ? "" : " of '" + prefix.substr(0, prefix.size() - 1) + "'";
      Rcpp::stop("setting %d%s has no name", static_cast<int>(i + 1), where);
    }
    set_from_r(options, key, prefix + key, VECTOR_ELT(list, i));
  }
  return options;
}

void set_from_r(exprflow::Options& options, const std::string& key, const std::string& name, SEXP value) {
  const R_xlen_t n = Rf_xlength(value);
  // Position of the first NA, so the message can point at it in a long vector.
  auto na_error = [&](R_xlen_t i) {
    if (n == 1) Rcpp::stop("setting '%s' must not be NA", name);
    Rcpp::stop("setting '%s' must not contain NA (element %d)", name, static_cast<int>(i + 1));
  };
  // A factor is an integer vector underneath; its codes are rarely what was meant.
  if (Rf_isFactor(value)) Rcpp::stop("setting '%s' is a factor; pass as.character() or as.integer() of it", name);
  switch (TYPEOF(value)) {
    case REALSXP:
    case INTSXP:
    case LGLSXP: {
      std::vector<double> numbers(n);
      for (R_xlen_t i = 0; i < n; ++i) {
        double v;
        if (TYPEOF(value) == REALSXP) {
          v = REAL(value)[i];
          if (ISNAN(v)) na_error(i);  // NA_real_ and NaN alike
          // Checked here, not left to the core, so the message names the full path.
          if (!std::isfinite(v)) Rcpp::stop("setting '%s' must be finite, got %s", name, v > 0 ? "Inf" : "-Inf");
        } else if (TYPEOF(value) == INTSXP) {
          if (INTEGER(value)[i] == NA_INTEGER) na_error(i);
          v = INTEGER(value)[i];
        } else {
          if (LOGICAL(value)[i] == NA_LOGICAL) na_error(i);
          v = LOGICAL(value)[i] ? 1.0 : 0.0;
        }
        numbers[i] = v;
      }
      if (n == 1) {
        options.set(key, numbers[0]);
      } else {
        options.set(key, std::move(numbers));
      }
      break;
    }
    case STRSXP: {
      std::vector<std::string> texts(n);
      for (R_xlen_t i = 0; i < n; ++i) {
        if (STRING_ELT(value, i) == NA_STRING) na_error(i);
        // JSON (a saved model's spec) holds UTF-8, whatever R's encoding.
        texts[i] = Rf_translateCharUTF8(STRING_ELT(value, i));
      }
      if (n == 1) {
        options.set(key, texts[0]);
      } else {
        options.set(key, std::move(texts));
      }
      break;
    }
    case VECSXP:
      options.set(key, options_from_list_at(Rcpp::List(value), name + "."));
      break;
    case NILSXP:
      Rcpp::stop("setting '%s' is NULL; leave it out to use the default", name);
    default:
      Rcpp::stop("setting '%s' must be a number, logical, string, a vector of these or a named list, got %s",
                 name, Rf_type2char(TYPEOF(value)));
  }
}

}  // namespace

exprflow::Options options_from_list(const Rcpp::List& list) { return options_from_list_at(list, ""); }

namespace {

// Strings of the core are UTF-8 (options_from_list translates them so).
Rcpp::CharacterVector utf8_strings(const std::vector<std::string>& texts) {
  Rcpp::CharacterVector out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    out[i] = Rf_mkCharLenCE(texts[i].data(), static_cast<int>(texts[i].size()), CE_UTF8);
  }
  return out;
}

}  // namespace

Rcpp::List options_to_list(const exprflow::Options& options) {
  using Kind = exprflow::Options::Value::Kind;
  Rcpp::List out;
  for (const auto& [key, value] : options.values()) {
    switch (value.kind) {
      case Kind::number: out[key] = value.number; break;
      case Kind::text: out[key] = utf8_strings({value.text}); break;
      case Kind::numbers: out[key] = Rcpp::NumericVector(value.numbers.begin(), value.numbers.end()); break;
      case Kind::texts: out[key] = utf8_strings(value.texts); break;
      case Kind::options: out[key] = options_to_list(*value.nested); break;
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

exprflow::TrainCallbacks progress_callbacks(Rcpp::Function& progress) {
  struct State {
    std::string stage = "model";
    int epoch = 0;
    double validation_loss = R_NaN;
  };
  auto state = std::make_shared<State>();
  exprflow::TrainCallbacks callbacks;
  callbacks.on_stage = [state](const std::string& name) { *state = State{name, 0, R_NaN}; };
  callbacks.on_epoch = [state](const exprflow::EpochRecord& record) {
    state->epoch = record.epoch;
    state->validation_loss = record.validation_loss;
  };
  callbacks.on_step = [state, &progress](long step, long total, double loss) {
    if (interrupt_pending()) return false;
    try {
      SEXP keep_going = progress(static_cast<double>(step), static_cast<double>(total), loss, state->stage,
                                 state->epoch, state->validation_loss);
      return !(TYPEOF(keep_going) == LGLSXP && Rf_length(keep_going) == 1 && LOGICAL(keep_going)[0] == FALSE);
    } catch (Rcpp::internal::InterruptedException&) {
      return false;
    }
  };
  return callbacks;
}

Rcpp::DataFrame history_frame(const std::vector<exprflow::EpochRecord>& history, size_t from) {
  const size_t n = history.size() - std::min(from, history.size());
  Rcpp::IntegerVector epoch(n);
  Rcpp::CharacterVector stage(n);
  Rcpp::NumericVector train(n), validation(n), lr(n), seconds(n);
  for (size_t k = 0; k < n; ++k) {
    const exprflow::EpochRecord& r = history[from + k];
    stage[k] = r.stage;
    epoch[k] = r.epoch;
    train[k] = r.train_loss;
    validation[k] = std::isnan(r.validation_loss) ? NA_REAL : r.validation_loss;
    lr[k] = r.learning_rate;
    seconds[k] = r.seconds;
  }
  return Rcpp::DataFrame::create(Rcpp::Named("stage") = stage, Rcpp::Named("epoch") = epoch,
                                 Rcpp::Named("train_loss") = train,
                                 Rcpp::Named("validation_loss") = validation,
                                 Rcpp::Named("learning_rate") = lr, Rcpp::Named("seconds") = seconds);
}

}  // namespace exprflow_r
