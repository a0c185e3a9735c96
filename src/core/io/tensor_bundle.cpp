#include "io/tensor_bundle.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

namespace exprflow {

// Tensors are written as the host lays them out; every platform R and
// LibTorch build for here is little endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the tensor bundle format assumes a little-endian host");

namespace {

constexpr char kMagic[8] = {'E', 'X', 'F', 'T', 'N', 'S', 'R', '1'};
constexpr size_t kHeaderSize = 16;
constexpr size_t kMaxDims = 16;

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {{"float32", at::kFloat}, {"float64", at::kDouble}, {"int64", at::kLong},
                                 {"int32", at::kInt},     {"bool", at::kBool},    {"uint8", at::kByte}};

const char* dtype_name(at::ScalarType type) {
  for (const DtypeName& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw std::logic_error(std::string("a tensor bundle cannot hold tensors of type ") + c10::toString(type));
}

at::ScalarType dtype_of(const std::string& name, const std::string& tensor) {
  for (const DtypeName& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw std::invalid_argument("tensor '" + tensor + "' has an unknown dtype '" + name + "'");
}

void put_u64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t get_u64(std::string_view bytes, size_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return value;
}

// An index field that must be a non-negative integer.
uint64_t unsigned_field(const Json& entry, const char* key, const std::string& tensor) {
  if (!entry.contains(key) || !entry.at(key).is_number_unsigned()) {
    throw std::invalid_argument("tensor '" + tensor + "' has no valid '" + key + "' (a non-negative integer)");
  }
  return entry.at(key).get<uint64_t>();
}

// Reads one index entry into a tensor whose elements come from `data`.
std::pair<std::string, Tensor> read_entry(const Json& entry, std::string_view data) {
  if (!entry.is_object()) throw std::invalid_argument("an entry of the tensor index is not an object");
  if (!entry.contains("name") || !entry.at("name").is_string() || entry.at("name").get<std::string>().empty()) {
    throw std::invalid_argument("an entry of the tensor index has no name");
  }
  const std::string name = entry.at("name").get<std::string>();
  if (!entry.contains("dtype") || !entry.at("dtype").is_string()) {
    throw std::invalid_argument("tensor '" + name + "' has no dtype");
  }
  const at::ScalarType type = dtype_of(entry.at("dtype").get<std::string>(), name);
  if (!entry.contains("shape") || !entry.at("shape").is_array() || entry.at("shape").size() > kMaxDims) {
    throw std::invalid_argument("tensor '" + name + "' has no valid shape (an array of at most 16 sizes)");
  }
  const uint64_t offset = unsigned_field(entry, "offset", name);
  const uint64_t bytes = unsigned_field(entry, "bytes", name);
  if (offset > data.size() || bytes > data.size() - offset) {
    throw std::invalid_argument("tensor '" + name + "' runs past the end of the data");
  }
  // Elements, checked against the bytes before any multiplication can overflow.
  const uint64_t item = c10::elementSize(type);
  std::vector<int64_t> shape;
  for (const Json& size : entry.at("shape")) {
    if (!size.is_number_unsigned()) throw std::invalid_argument("tensor '" + name + "' has a size that is not a count");
    const uint64_t d = size.get<uint64_t>();
    if (d > static_cast<uint64_t>(INT64_MAX)) throw std::invalid_argument("tensor '" + name + "' has a shape larger than its bytes");
    shape.push_back(static_cast<int64_t>(d));
  }
  // A size 0 anywhere makes the tensor empty (e.g. (1, 0): one row of no
  // values), whatever the sizes before it.
  const bool empty = std::find(shape.begin(), shape.end(), int64_t(0)) != shape.end();
  uint64_t numel = empty ? 0 : 1;
  for (int64_t d : shape) {
    if (empty) break;
    if (numel > bytes / item / static_cast<uint64_t>(d)) {
      throw std::invalid_argument("tensor '" + name + "' has a shape larger than its bytes");
    }
    numel *= static_cast<uint64_t>(d);
  }
  // An empty tensor's other sizes are bounded too, so that its strides cannot overflow.
  for (int64_t d : shape) {
    if (numel == 0 && d > (int64_t(1) << 24)) throw std::invalid_argument("tensor '" + name + "' has an implausible shape");
  }
  if (numel * item != bytes) {
    throw std::invalid_argument("tensor '" + name + "' has " + std::to_string(bytes) + " bytes for " +
                                std::to_string(numel) + " elements of " + entry.at("dtype").get<std::string>());
  }
  Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
  if (bytes > 0) std::memcpy(t.data_ptr(), data.data() + offset, bytes);
  return {name, t};
}

}  // namespace

void TensorBundle::put(const std::string& name, const Tensor& tensor) {
  dtype_name(tensor.scalar_type());  // refuse a type the format has no name for now, not at to_bytes()
  // One copy, contiguous, on the CPU, whatever the source's device and layout.
  Tensor copy = tensor.detach().to(at::kCPU, tensor.scalar_type(), /*non_blocking=*/false, /*copy=*/true,
                                   at::MemoryFormat::Contiguous);
  for (auto& [key, value] : tensors_) {
    if (key == name) {
      value = copy;
      return;
    }
  }
  tensors_.emplace_back(name, copy);
}

bool TensorBundle::has(const std::string& name) const {
  for (const auto& entry : tensors_) {
    if (entry.first == name) return true;
  }
  return false;
}

const Tensor& TensorBundle::get(const std::string& name) const {
  for (const auto& entry : tensors_) {
    if (entry.first == name) return entry.second;
  }
  throw std::invalid_argument("tensor '" + name + "' is missing");
}

const Tensor& TensorBundle::get(const std::string& name, at::IntArrayRef shape, at::ScalarType dtype) const {
  const Tensor& stored = get(name);
  if (stored.sizes() != shape || stored.scalar_type() != dtype) {
    throw std::invalid_argument("tensor '" + name + "' has shape " + c10::str(stored.sizes()) + " (" +
                                dtype_name(stored.scalar_type()) + "), expected " + c10::str(shape) + " (" +
                                dtype_name(dtype) + ")");
  }
  return stored;
}

void TensorBundle::put_module(const std::string& prefix, const torch::nn::Module& module) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) put(prefix + "/" + p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true)) put(prefix + "/" + b.key(), b.value());
}

void TensorBundle::get_module(const std::string& prefix, torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  size_t expected = 0;
  const auto copy_into = [&](const std::string& key, Tensor& target) {
    target.copy_(get(prefix + "/" + key, target.sizes(), target.scalar_type()));
    ++expected;
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) copy_into(p.key(), p.value());
  for (auto& b : module.named_buffers(/*recurse=*/true)) copy_into(b.key(), b.value());
  size_t stored = 0;
  for (const auto& entry : tensors_) stored += entry.first.rfind(prefix + "/", 0) == 0 ? 1 : 0;
  if (stored != expected) {
    throw std::invalid_argument("'" + prefix + "' holds " + std::to_string(stored) + " tensors, the model has " +
                                std::to_string(expected));
  }
}

std::string TensorBundle::to_bytes() const {
  Json index = Json::object();
  index["meta"] = meta;
  Json list = Json::array();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    list.push_back(Json{{"name", name},
                        {"dtype", dtype_name(t.scalar_type())},
                        {"shape", t.sizes().vec()},
                        {"offset", offset},
                        {"bytes", bytes}});
    offset += bytes;
  }
  index["tensors"] = list;
  const std::string text = index.dump();

  std::string out;
  out.reserve(kHeaderSize + text.size() + offset);
  out.append(kMagic, sizeof kMagic);
  put_u64(out, text.size());
  out += text;
  for (const auto& entry : tensors_) {
    const Tensor& t = entry.second;  // contiguous CPU (put() made it so)
    out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  }
  return out;
}

bool TensorBundle::looks_like_bundle(std::string_view bytes) {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

TensorBundle TensorBundle::from_bytes(std::string_view bytes) {
  if (!looks_like_bundle(bytes)) throw std::invalid_argument("not an exprflow tensor bundle");
  if (bytes.size() < kHeaderSize) throw std::invalid_argument("the header is truncated");
  const uint64_t index_size = get_u64(bytes, sizeof kMagic);
  if (index_size > bytes.size() - kHeaderSize) throw std::invalid_argument("the index runs past the end");
  const std::string_view text = bytes.substr(kHeaderSize, index_size);
  const Json index = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) throw std::invalid_argument("the index is not a JSON object");
  TensorBundle bundle;
  if (index.contains("meta")) {
    if (!index.at("meta").is_object()) throw std::invalid_argument("'meta' is not a JSON object");
    bundle.meta = index.at("meta");
  }
  if (!index.contains("tensors") || !index.at("tensors").is_array()) {
    throw std::invalid_argument("the index has no 'tensors' array");
  }
  const std::string_view data = bytes.substr(kHeaderSize + index_size);
  std::unordered_set<std::string> names;
  for (const Json& entry : index.at("tensors")) {
    auto named = read_entry(entry, data);
    if (!names.insert(named.first).second) throw std::invalid_argument("tensor '" + named.first + "' appears twice");
    bundle.tensors_.push_back(std::move(named));
  }
  return bundle;
}

}  // namespace exprflow
