// Writes the seed corpora of the fuzz targets: small, valid files of every kind each loader accepts, so
// the fuzzers start from deep inside the formats instead of guessing magic numbers.
//
//   fuzz_make_corpus <dir>     (writes <dir>/idx, <dir>/safetensors, <dir>/csv)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_harness.hpp"

namespace fs = std::filesystem;
using namespace xg;

namespace {

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  XG_CHECK(out.good(), "make_corpus: cannot write '{}'", path.string());
}

/// An idx file of any element type: magic, big-endian sizes, then the payload as given.
std::vector<uint8_t> idx_bytes(uint8_t type_code, const std::vector<uint32_t>& shape, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> bytes{0, 0, type_code, static_cast<uint8_t>(shape.size())};
  for (uint32_t size : shape)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(size >> shift));
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

void write_idx_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  write_file(dir / "ubyte_1d.idx", idx_bytes(0x08, {5}, {0, 1, 2, 3, 255}));
  data::write_idx_ubyte((dir / "ubyte_images.idx").string(), {2, 3, 3}, std::vector<uint8_t>(18, 7));
  data::write_idx_ubyte((dir / "ubyte_images.idx.gz").string(), {2, 3, 3}, std::vector<uint8_t>(18, 9));
  write_file(dir / "byte_2d.idx", idx_bytes(0x09, {2, 2}, {0x80, 0xff, 0x00, 0x7f}));
  write_file(dir / "short_1d.idx", idx_bytes(0x0B, {2}, {0x80, 0x00, 0x01, 0x02}));
  write_file(dir / "int_1d.idx", idx_bytes(0x0C, {1}, {0xff, 0xff, 0xff, 0xfe}));
  write_file(dir / "float_1d.idx", idx_bytes(0x0D, {2}, {0x3f, 0x80, 0x00, 0x00, 0x7f, 0xc0, 0x00, 0x00}));  // 1.0, NaN
  write_file(dir / "double_1d.idx", idx_bytes(0x0E, {1}, {0xc0, 0x00, 0, 0, 0, 0, 0, 0}));                  // -2.0
  write_file(dir / "empty_dim.idx", idx_bytes(0x08, {0, 4}, {}));
}

void write_safetensors_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  nn::OrderedDict<Tensor> plain;
  plain.insert("a", arange(0, 6, 1, kFloat32).reshape({2, 3}));
  plain.insert("b", tensor({-1, 7}, {2}, kInt64));
  plain.insert("c", scalar_tensor(2.5, kFloat64));
  plain.insert("empty", zeros({0, 3}));
  nn::save_safetensors(plain, (dir / "plain.safetensors").string(), {{"format", "pt"}, {"note", "seed"}});
  nn::save_safetensors({}, (dir / "no_tensors.safetensors").string());

  fuzz::CheckpointTargets targets;
  targets.train_step();
  nn::save(targets.model, (dir / "model.safetensors").string());
  nn::save_tensors(targets.optimizer->state_dict().to_tensors(), (dir / "optimizer.safetensors").string());
  optim::CheckpointState state;
  state.epoch = 3;
  state.scalars["best_loss"] = 0.25;
  state.tensors["history"] = tensor({1.0, 0.5});
  state.text["loader"] = "seed";
  targets.checkpoint.save((dir / "checkpoint.safetensors").string(), state);
}

void write_csv(const fs::path& path, uint8_t options, const std::string& text) {
  std::vector<uint8_t> bytes{options};
  bytes.insert(bytes.end(), text.begin(), text.end());
  write_file(path, bytes);
}

void write_csv_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  // See fuzz::csv_options_from_byte for the first byte.
  write_csv(dir / "header_named_target.csv", 0xF1, "a,b,y\n1,2,0\n3.5,-4e2,1\n");
  write_csv(dir / "semicolon_float_last.csv", 0x8A, "1;2;0.5\n3;4;1.5\n");
  write_csv(dir / "tab_first_column.csv", 0x75, "t\tx1\tx2\n1\t0.1\t0.2\n0\t0.3\t0.4\n");
  write_csv(dir / "space_crlf_blank_lines.csv", 0x87, "x y\r\n1 0\r\n\r\n2 1\r\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  write_idx_corpus(root / "idx");
  write_safetensors_corpus(root / "safetensors");
  write_csv_corpus(root / "csv");
  return 0;
}
