#include "io/model_archive.hpp"

#include <cmath>
#include <stdexcept>

#include "io/legacy_archive.hpp"
#include "io/model_envelope.hpp"

namespace exprflow {

std::string model_file_bytes(const TensorBundle& bundle) { return seal_payload(bundle.to_bytes()); }

TensorBundle open_model_bytes(std::string_view bytes, const std::string& source, const std::string& format,
                              int max_version, const std::string& kind, bool trust_legacy) {
  const std::string unreadable = "cannot read " + kind + " file '" + source + "': ";
  const Envelope envelope = open_envelope(bytes, source, kind);  // checked: throws with its own message
  TensorBundle bundle;
  if (envelope.version <= kLastArchiveEnvelopeVersion) {
    if (!trust_legacy) {
      throw std::runtime_error(
          unreadable + "it was saved by an earlier exprflow as a LibTorch archive, whose reader a crafted file can "
          "crash. If you trust where the file came from, load it with trust_legacy = TRUE and save it again: the "
          "new file is in the current format");
    }
    try {
      bundle = bundle_from_legacy_archive(envelope.payload);
    } catch (const LegacyArchiveUnsupported& e) {
      throw std::runtime_error(unreadable + "it was saved by an earlier exprflow as a LibTorch archive, and " +
                               e.what());
    } catch (const std::exception&) {
      throw std::runtime_error(unreadable + "not an exprflow " + kind + " file, or unreadable");
    }
  } else {
    try {
      bundle = TensorBundle::from_bytes(envelope.payload);
    } catch (const std::exception& e) {
      throw std::runtime_error(unreadable + "the file is corrupt (" + e.what() + ")");
    }
  }
  const Json& meta = bundle.meta;
  if (!meta.is_object() || !meta.contains("format") || !meta.at("format").is_string() ||
      meta.at("format").get<std::string>() != format) {
    throw std::runtime_error(unreadable + "not an exprflow " + kind + " file");
  }
  if (!meta.contains("version") || !meta.at("version").is_number()) {
    throw std::runtime_error(unreadable + "the file is corrupt (no format version)");
  }
  const double version = meta.at("version").get<double>();
  if (version > max_version) {
    throw std::runtime_error("'" + source + "' was written by a newer exprflow (format version " +
                             format_number(version) + ")");
  }
  return bundle;
}

namespace {

// JSON has no NaN. A missing validation loss (no validation split) is NaN in
// memory and null in the file; a diverged training loss is written the same
// way, so that such a model can still be saved and read back.
Json number_or_null(double value) { return std::isnan(value) ? Json(nullptr) : Json(value); }
double number_from(const Json& value) { return value.is_null() ? NAN : value.get<double>(); }

}  // namespace

Json archive_meta(const std::string& format, int version, const Options& spec) {
  Json meta = Json::object();
  meta["format"] = format;
  meta["version"] = version;
  meta["spec"] = Json::parse(spec.to_json());
  return meta;
}

Json history_to_json(const std::vector<EpochRecord>& history) {
  Json rows = Json::array();
  for (const EpochRecord& r : history) {
    rows.push_back(Json{{"stage", r.stage},
                        {"epoch", r.epoch},
                        {"train_loss", number_or_null(r.train_loss)},
                        {"validation_loss", number_or_null(r.validation_loss)},
                        {"learning_rate", number_or_null(r.learning_rate)},
                        {"seconds", number_or_null(r.seconds)}});
  }
  return rows;
}

std::vector<EpochRecord> history_from_json(const Json& rows) {
  if (!rows.is_array()) {
    throw std::invalid_argument(std::string("the training history must be a JSON array, got ") + rows.type_name());
  }
  std::vector<EpochRecord> history;
  for (const Json& row : rows) {
    EpochRecord r;
    r.stage = row.value("stage", std::string("model"));
    r.epoch = row.at("epoch").get<int>();
    r.train_loss = number_from(row.at("train_loss"));
    r.validation_loss = number_from(row.at("validation_loss"));
    r.learning_rate = number_from(row.at("learning_rate"));
    r.seconds = number_from(row.at("seconds"));
    history.push_back(r);
  }
  return history;
}

}  // namespace exprflow
