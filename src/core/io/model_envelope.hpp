// The envelope around every model file's payload: a fixed header
// that names the file type and envelope version, the payload's length and its
// CRC-32, so that a truncated or corrupted file is refused with a clear error
// instead of loading as different weights (LibTorch's zip reader does not
// check its records' checksums). Torch-free.
//
//   offset  size  field
//   0       8     magic "EXPRFLOW"
//   8       4     envelope version, little endian (2)
//   12      8     payload length in bytes, little endian
//   20      4     CRC-32 (IEEE 802.3) of the payload, little endian
//   24      n     payload: version 2, exprflow's tensor bundle
//                 (io/tensor_bundle.hpp); version 1, a LibTorch archive
//
// Files written before the envelope existed are bare LibTorch archives (they
// start with the zip signature "PK\3\4"): version 0 here. Versions 0 and 1
// are legacy files (io/legacy_archive.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace exprflow {

constexpr uint32_t kEnvelopeVersion = 2;
// The last version whose payload is a LibTorch archive.
constexpr uint32_t kLastArchiveEnvelopeVersion = 1;

struct Envelope {
  uint32_t version = 0;      // 0: a bare archive written before the envelope
  std::string_view payload;  // a view into the bytes opened, no copy
};

// CRC-32 (reflected polynomial 0xEDB88320, initial value and final XOR
// 0xFFFFFFFF): crc32("123456789") == 0xCBF43926.
uint32_t crc32(const char* data, size_t size);

// The payload in an envelope of the current version.
std::string seal_payload(std::string_view payload);

// The payload of `bytes` and the envelope's version, after checking the
// envelope; bytes of a bare (pre-envelope) archive are returned whole.
// `source` names the file (or the bytes' owner) and `kind` what it should
// hold, for errors.
Envelope open_envelope(std::string_view bytes, const std::string& source, const std::string& kind);

// Whole-file I/O. Writing goes to a temporary file beside `path` that is
// then renamed over it, so a crash never leaves half a model at `path`.
std::string read_file_bytes(const std::string& path, const std::string& kind);
void write_file_atomically(const std::string& path, std::string_view bytes, const std::string& kind);

}  // namespace exprflow
