// The checked envelope of model files (io/model_envelope.hpp): CRC-32
// against its published check value, a round trip, and every damaged form a
// reader must refuse with an error that says what is wrong.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "error_message.hpp"
#include "io/model_envelope.hpp"

using namespace exprflow;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string open_error(const std::string& bytes) {
  return error_of([&] { open_envelope(bytes, "m.exprflow", "model"); });
}

}  // namespace

TEST(ModelEnvelope, Crc32MatchesTheStandardCheckValue) {
  const std::string text = "123456789";
  EXPECT_EQ(crc32(text.data(), text.size()), 0xCBF43926u);
  EXPECT_EQ(crc32("", 0), 0u);
}

TEST(ModelEnvelope, SealedPayloadOpensUnchangedAndBareArchivesPassThrough) {
  const std::string payload("weights\0and\xffmore", 16);
  const std::string sealed = seal_payload(payload);
  EXPECT_EQ(sealed.size(), payload.size() + 24);
  EXPECT_EQ(sealed.substr(0, 8), "EXPRFLOW");
  const Envelope opened = open_envelope(sealed, "m", "model");
  EXPECT_EQ(opened.payload, payload);
  EXPECT_EQ(opened.version, kEnvelopeVersion);
  // A file from before the envelope: a bare zip archive, returned as is (version 0).
  const std::string zip = std::string("PK\3\4", 4) + "rest";
  EXPECT_EQ(open_envelope(zip, "m", "model").payload, zip);
  EXPECT_EQ(open_envelope(zip, "m", "model").version, 0u);
}

TEST(ModelEnvelope, DamagedBytesAreRefusedWithTheReason) {
  const std::string sealed = seal_payload(std::string(1000, 'w'));
  std::string flipped = sealed;
  flipped[500] = static_cast<char>(flipped[500] ^ 0x40);
  std::string msg = open_error(flipped);
  EXPECT_TRUE(contains(msg, "m.exprflow") && contains(msg, "corrupt") && contains(msg, "checksum")) << msg;
  msg = open_error(sealed.substr(0, sealed.size() - 1));
  EXPECT_TRUE(contains(msg, "truncated")) << msg;
  msg = open_error(sealed.substr(0, 12));
  EXPECT_TRUE(contains(msg, "truncated")) << msg;
  msg = open_error(sealed + "x");
  EXPECT_TRUE(contains(msg, "extra bytes")) << msg;
  std::string newer = sealed;
  newer[8] = static_cast<char>(kEnvelopeVersion + 1);
  msg = open_error(newer);
  EXPECT_TRUE(contains(msg, "newer exprflow") && contains(msg, "version " + std::to_string(kEnvelopeVersion + 1))) << msg;
  msg = open_error("plain text");
  EXPECT_TRUE(contains(msg, "not an exprflow model file")) << msg;
  msg = open_error("");
  EXPECT_TRUE(contains(msg, "not an exprflow model file")) << msg;
}

TEST(ModelEnvelope, FilesAreWrittenWholeOrNotAtAll) {
  const std::string path = ::testing::TempDir() + "/exprflow_envelope_test.bin";
  write_file_atomically(path, "first", "model");
  write_file_atomically(path, "second version", "model");
  EXPECT_EQ(read_file_bytes(path, "model"), "second version");
  EXPECT_EQ(std::fopen((path + ".partial").c_str(), "rb"), nullptr);
  std::remove(path.c_str());
  std::string msg = error_of([&] { read_file_bytes(path, "model"); });
  EXPECT_TRUE(contains(msg, "cannot read model file") && contains(msg, path)) << msg;
  msg = error_of([&] { write_file_atomically("/no/such/dir/m.exprflow", "x", "model"); });
  EXPECT_TRUE(contains(msg, "cannot write model file '/no/such/dir/m.exprflow'")) << msg;
}
