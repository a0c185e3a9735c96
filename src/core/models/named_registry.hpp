// Lookup in a registry that maps architecture names to their entries, shared
// by the generative (models/registry) and connectivity registries: an
// unknown name is an error that lists the valid ones.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace exprflow {

template <class Map>
std::vector<std::string> registry_names(const Map& registry) {
  std::vector<std::string> names;
  for (const auto& kv : registry) names.push_back(kv.first);
  return names;
}

// `kind` qualifies the name in the message, e.g. "architecture".
template <class Map>
const typename Map::mapped_type& registry_entry(const Map& registry, const std::string& name,
                                                const std::string& kind) {
  auto it = registry.find(name);
  if (it == registry.end()) {
    std::string valid;
    for (const auto& kv : registry) valid += (valid.empty() ? "" : ", ") + ("'" + kv.first + "'");
    throw std::invalid_argument("unknown " + kind + " '" + name + "'; valid: " + valid);
  }
  return it->second;
}

}  // namespace exprflow
