#include "io/model_envelope.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace exprflow {

namespace {

constexpr char kMagic[8] = {'E', 'X', 'P', 'R', 'F', 'L', 'O', 'W'};
constexpr size_t kHeaderSize = 24;
constexpr char kZipSignature[4] = {'P', 'K', 3, 4};

std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

template <typename T>
void put_le(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

template <typename T>
T get_le(std::string_view bytes, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

std::string hex(uint32_t v) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08X", v);
  return text;
}

}  // namespace

uint32_t crc32(const char* data, size_t size) {
  static const std::array<uint32_t, 256> table = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ static_cast<unsigned char>(data[i])) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string seal_payload(std::string_view payload) {
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.append(kMagic, sizeof kMagic);
  put_le<uint32_t>(out, kEnvelopeVersion);
  put_le<uint64_t>(out, payload.size());
  put_le<uint32_t>(out, crc32(payload.data(), payload.size()));
  out += payload;
  return out;
}

Envelope open_envelope(std::string_view bytes, const std::string& source, const std::string& kind) {
  const std::string unreadable = "cannot read " + kind + " file '" + source + "': ";
  if (bytes.size() >= sizeof kZipSignature && std::memcmp(bytes.data(), kZipSignature, sizeof kZipSignature) == 0) {
    return Envelope{0, bytes};  // written before the envelope: a bare archive
  }
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw std::runtime_error(unreadable + "not an exprflow " + kind + " file");
  }
  if (bytes.size() < kHeaderSize) throw std::runtime_error(unreadable + "the file is truncated (incomplete header)");
  const uint32_t version = get_le<uint32_t>(bytes, 8);
  if (version > kEnvelopeVersion) {
    throw std::runtime_error(unreadable + "it was written by a newer exprflow (file envelope version " +
                             std::to_string(version) + ", this version reads up to " +
                             std::to_string(kEnvelopeVersion) + ")");
  }
  const uint64_t length = get_le<uint64_t>(bytes, 12);
  if (length != bytes.size() - kHeaderSize) {
    throw std::runtime_error(unreadable + "the file is " +
                             (length > bytes.size() - kHeaderSize ? "truncated" : "followed by extra bytes") +
                             " (header says " + std::to_string(length) + " bytes of model, found " +
                             std::to_string(bytes.size() - kHeaderSize) + ")");
  }
  const uint32_t expected = get_le<uint32_t>(bytes, 20);
  const uint32_t actual = crc32(bytes.data() + kHeaderSize, length);
  if (actual != expected) {
    throw std::runtime_error(unreadable + "the file is corrupt (checksum " + hex(actual) + ", expected " +
                             hex(expected) + ")");
  }
  return Envelope{version, bytes.substr(kHeaderSize)};  // a view: no copy of the weights
}

std::string read_file_bytes(const std::string& path, const std::string& kind) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + kind + " file '" + path + "': " + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) throw std::runtime_error("cannot read " + kind + " file '" + path + "': not a regular file");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) {
    throw std::runtime_error("cannot read " + kind + " file '" + path + "': read error");
  }
  return bytes;
}

void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& kind) {
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw std::runtime_error("cannot write " + kind + " file '" + path + "': " + std::strerror(errno));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      throw std::runtime_error("cannot write " + kind + " file '" + path + "': write failed (disk full?)");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    throw std::runtime_error("cannot write " + kind + " file '" + path + "': " + reason);
  }
}

}  // namespace exprflow
