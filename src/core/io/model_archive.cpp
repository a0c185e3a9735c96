#include "io/model_archive.hpp"

#include <cmath>
#include <stdexcept>

namespace exprflow {

void write_model_archive(torch::serialize::OutputArchive& archive, const std::string& path,
                         const std::string& kind) {
  try {
    archive.save_to(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot write " + kind + " file '" + path + "': " + e.what_without_backtrace());
  }
}

json::Value open_model_archive(torch::serialize::InputArchive& archive, const std::string& path,
                               const std::string& format, int max_version, const std::string& kind) {
  const std::string unreadable = "cannot read " + kind + " file '" + path + "': ";
  json::Value meta;
  try {
    c10::IValue meta_value;
    archive.load_from(path);
    archive.read("meta", meta_value);
    meta = json::parse(meta_value.toStringRef());
  } catch (const std::exception&) {
    throw std::runtime_error(unreadable + "missing, not an exprflow " + kind + " file, or unreadable");
  }
  if (!meta.is_object() || !meta.contains("format") || !meta.at("format").is_string() ||
      meta.at("format").as_string() != format) {
    throw std::runtime_error(unreadable + "not an exprflow " + kind + " file");
  }
  if (!meta.contains("version") || !meta.at("version").is_number()) {
    throw std::runtime_error(unreadable + "the file is corrupt (no format version)");
  }
  if (meta.at("version").as_number() > max_version) {
    throw std::runtime_error("'" + path + "' was written by a newer exprflow (format version " +
                             json::format_number(meta.at("version").as_number()) + ")");
  }
  return meta;
}

json::Value history_to_json(const std::vector<EpochRecord>& history) {
  json::Value rows = json::Value::array();
  for (const EpochRecord& r : history) {
    json::Value row = json::Value::object();
    row.set("epoch", r.epoch).set("train_loss", r.train_loss).set("validation_loss", r.validation_loss)
        .set("learning_rate", r.learning_rate).set("seconds", r.seconds);
    rows.push(row);
  }
  return rows;
}

std::vector<EpochRecord> history_from_json(const json::Value& rows) {
  std::vector<EpochRecord> history;
  for (const json::Value& row : rows.as_array()) {
    EpochRecord r;
    r.epoch = static_cast<int>(row.at("epoch").as_number());
    r.train_loss = row.at("train_loss").as_number();
    r.validation_loss = row.at("validation_loss").is_null() ? NAN : row.at("validation_loss").as_number();
    r.learning_rate = row.at("learning_rate").as_number();
    r.seconds = row.at("seconds").as_number();
    history.push_back(r);
  }
  return history;
}

}  // namespace exprflow
