// data/: idx reader (raw, gzip, corrupt files), MNIST, CSV, TensorDataset, Subset, random_split,
// DataLoader (batching, shuffling, drop_last, prefetch determinism, errors), transforms.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include <xgrad/xgrad.hpp>

using namespace xg;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("xgrad_test_data_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

/// Writes a tiny MNIST-layout directory: n images of rows x cols with pixel (i, k) = (i * 10 + k) % 256.
void write_mnist(const fs::path& dir, const std::string& prefix, int64_t n, int64_t rows, int64_t cols, bool gzip) {
  std::vector<uint8_t> pixels, labels;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < rows * cols; ++k) pixels.push_back(static_cast<uint8_t>((i * 10 + k) % 256));
    labels.push_back(static_cast<uint8_t>(i % 10));
  }
  const std::string ext = gzip ? ".gz" : "";
  data::write_idx_ubyte((dir / (prefix + "-images-idx3-ubyte" + ext)).string(), {n, rows, cols}, pixels);
  data::write_idx_ubyte((dir / (prefix + "-labels-idx1-ubyte" + ext)).string(), {n}, labels);
}
}  // namespace

TEST_CASE("idx: a hand-written file parses to its shape and values", "[data][idx]") {
  fs::path dir = temp_dir("idx");
  // magic 0x00000803? No: type 0x08 (ubyte), 2 dims: 2 x 3, then six bytes.
  write_bytes(dir / "a.idx", {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 250});
  data::IdxArray a = data::read_idx((dir / "a.idx").string());
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  Tensor t = a.to_tensor();
  CHECK(t.dtype() == kInt64);
  CHECK(t.data_ptr<int64_t>()[5] == 250);
  // int32 big-endian: 0x0C type, one dim of 2: values 1 and -2.
  write_bytes(dir / "b.idx", {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe});
  Tensor b = data::read_idx((dir / "b.idx").string()).to_tensor();
  CHECK(b.data_ptr<int64_t>()[0] == 1);
  CHECK(b.data_ptr<int64_t>()[1] == -2);
  fs::remove_all(dir);
}

TEST_CASE("idx: raw and gzip round trip", "[data][idx]") {
  fs::path dir = temp_dir("roundtrip");
  std::vector<uint8_t> values{9, 8, 7, 6, 5, 4};
  for (const char* name : {"x.idx", "x.idx.gz"}) {
    data::write_idx_ubyte((dir / name).string(), {3, 2}, values);
    data::IdxArray a = data::read_idx((dir / name).string());
    CHECK(a.shape == std::vector<int64_t>{3, 2});
    CHECK(a.bytes == values);
  }
  CHECK(read_bytes(dir / "x.idx.gz")[0] == 0x1f);  // really compressed
  fs::remove_all(dir);
}

TEST_CASE("idx: corrupt files are errors naming the file", "[data][idx]") {
  fs::path dir = temp_dir("corrupt");
  const std::string good = (dir / "good.idx").string();
  data::write_idx_ubyte(good, {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  std::vector<uint8_t> bytes = read_bytes(good);

  auto bad = [&](const std::string& name, std::vector<uint8_t> content) {
    write_bytes(dir / name, content);
    return (dir / name).string();
  };
  std::string truncated = bad("truncated.idx", std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  CHECK_THROWS_WITH(data::read_idx(truncated), Contains("truncated.idx") && Contains("truncated"));
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK_THROWS_WITH(data::read_idx(bad("trailing.idx", longer)), Contains("trailing"));
  std::vector<uint8_t> magic = bytes;
  magic[0] = 0x12;
  CHECK_THROWS_WITH(data::read_idx(bad("magic.idx", magic)), Contains("magic"));
  std::vector<uint8_t> type = bytes;
  type[2] = 0x42;
  CHECK_THROWS_WITH(data::read_idx(bad("type.idx", type)), Contains("element type"));
  CHECK_THROWS_WITH(data::read_idx(bad("header.idx", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 6))), Contains("header"));
  CHECK_THROWS_WITH(data::read_idx(bad("tiny.idx", {0, 0})), Contains("too short"));
  // Huge declared sizes must not allocate or overflow.
  CHECK_THROWS_WITH(data::read_idx(bad("huge.idx", {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
                    Contains("huge.idx"));
  // A gzip stream cut in half.
  data::write_idx_ubyte((dir / "g.idx.gz").string(), {100}, std::vector<uint8_t>(100, 7));
  std::vector<uint8_t> gz = read_bytes(dir / "g.idx.gz");
  std::string cut = bad("cut.idx.gz", std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
  CHECK_THROWS_WITH(data::read_idx(cut), Contains("cut.idx.gz"));
  CHECK_THROWS_WITH(data::read_idx((dir / "missing.idx").string()), Contains("cannot open"));
  fs::remove_all(dir);
}

TEST_CASE("MNIST reads images scaled to [0, 1] and int64 labels, and validates the pair", "[data][mnist]") {
  fs::path dir = temp_dir("mnist");
  write_mnist(dir, "train", 12, 4, 5, /*gzip=*/true);
  write_mnist(dir, "t10k", 3, 4, 5, /*gzip=*/false);
  data::MNIST train(dir.string(), true);
  data::MNIST test(dir.string(), data::MNIST::Mode::kTest);
  CHECK(train.size() == 12);
  CHECK(test.size() == 3);
  CHECK(train.images().shape() == Shape{12, 1, 4, 5});
  data::Example<> e = train.get(2);
  CHECK(e.data.shape() == Shape{1, 4, 5});
  CHECK(e.data.data_ptr<float>()[3] == Approx((2 * 10 + 3) / 255.0));
  CHECK(e.target.item<int64_t>() == 2);

  fs::path bad = temp_dir("mnist_bad");
  write_mnist(bad, "train", 5, 2, 2, false);
  data::write_idx_ubyte((bad / "train-labels-idx1-ubyte").string(), {4}, {1, 2, 3, 4});
  CHECK_THROWS_WITH(data::MNIST(bad.string(), true), Contains("5 images") && Contains("4 labels"));
  data::write_idx_ubyte((bad / "train-labels-idx1-ubyte").string(), {5}, {1, 2, 3, 4, 12});
  CHECK_THROWS_WITH(data::MNIST(bad.string(), true), Contains("label 12"));
  CHECK_THROWS_WITH(data::MNIST(bad.string(), false), Contains("t10k-images-idx3-ubyte"));
  fs::remove_all(dir);
  fs::remove_all(bad);
}

TEST_CASE("datasets::MNIST (libtorch's form): get(i) views, size(), is_train, Normalize + Stack", "[data][mnist][api]") {
  fs::path dir = temp_dir("mnist_api");
  write_mnist(dir, "train", 6, 2, 3, /*gzip=*/true);
  write_mnist(dir, "t10k", 2, 2, 3, /*gzip=*/false);
  data::datasets::MNIST train(dir.string());
  data::datasets::MNIST test(dir.string(), data::datasets::MNIST::Mode::kTest);
  CHECK(train.is_train());
  CHECK(!test.is_train());
  CHECK(train.size().value() == 6);
  CHECK(test.size().value() == 2);
  CHECK(train.images().shape() == Shape{6, 1, 2, 3});
  data::Example<> e = train.get(4);
  CHECK(e.data.shape() == Shape{1, 2, 3});
  CHECK(e.data.is_view());  // no copy per example
  CHECK(e.data.contiguous_data<float>()[5] == Approx((4 * 10 + 5) / 255.0));
  CHECK(e.target.item<int64_t>() == 4);
  CHECK_THROWS_WITH(train.get(6), Contains("MNIST::get") && Contains("index 6"));
  auto ready = std::move(train).map(data::transforms::Normalize<>(0.5, 0.25)).map(data::transforms::Stack<>());
  data::Example<> batch = ready.get_batch({1, 0});
  CHECK(batch.data.shape() == Shape{2, 1, 2, 3});
  CHECK(batch.data.contiguous_data<float>()[0] == (static_cast<float>(10 / 255.0f) - 0.5f) / 0.25f);
  CHECK(batch.target.contiguous_data<int64_t>()[1] == 0);
  CHECK_THROWS_WITH(data::datasets::MNIST((dir / "missing").string()), Contains("train-images-idx3-ubyte"));
  fs::remove_all(dir);
}

TEST_CASE("the real Fashion-MNIST installed by setup loads", "[data][mnist]") {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  REQUIRE(fs::exists(root + "/train-images-idx3-ubyte.gz"));  // scripts/setup.sh installs dataset-fashion-mnist
  data::MNIST test(root, false);
  CHECK(test.size() == 10000);
  CHECK(test.images().shape() == Shape{10000, 1, 28, 28});
  // Ten balanced classes: 1,000 test images each.
  Tensor counts = sum(one_hot(test.targets(), 10), {0});
  for (int c = 0; c < 10; ++c) CHECK(counts.data_ptr<int64_t>()[c] == 1000);
  CHECK(test.images().max().item<float>() == 1.0f);
  CHECK(test.images().min().item<float>() == 0.0f);
}

TEST_CASE("CSVDataset parses numeric columns and reports bad rows", "[data][csv]") {
  fs::path dir = temp_dir("csv");
  write_text(dir / "iris.csv", "a,b,label,c\n1.5,2,0,3\n4,5.25,2,6\n\n7,8,1,-9e-1\n");
  data::CSVDataset by_name((dir / "iris.csv").string(), data::CSVOptions().target_column("label"));
  CHECK(by_name.size() == 3);
  CHECK(by_name.feature_names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(by_name.data().shape() == Shape{3, 3});
  CHECK(by_name.data().data_ptr<float>()[5] == 6.0f);
  CHECK(by_name.data().data_ptr<float>()[8] == Approx(-0.9));
  CHECK(by_name.targets().data_ptr<int64_t>()[1] == 2);
  data::CSVDataset by_index((dir / "iris.csv").string(), data::CSVOptions().target_column(int64_t{0}).target_type(kFloat32));
  CHECK(by_index.targets().data_ptr<float>()[0] == 1.5f);

  write_text(dir / "ragged.csv", "a,b\n1,2\n3\n");
  CHECK_THROWS_WITH(data::CSVDataset((dir / "ragged.csv").string()), Contains("line 3") && Contains("1 fields"));
  write_text(dir / "text.csv", "a,b\n1,x2\n");
  CHECK_THROWS_WITH(data::CSVDataset((dir / "text.csv").string()), Contains("'x2' is not a number") && Contains("column 2"));
  write_text(dir / "frac.csv", "a,b\n1,0.5\n");
  CHECK_THROWS_WITH(data::CSVDataset((dir / "frac.csv").string()), Contains("not an integer class label"));
  CHECK_THROWS_WITH(data::CSVDataset((dir / "iris.csv").string(), data::CSVOptions().target_column("nope")), Contains("no column named 'nope'"));
  fs::remove_all(dir);
}

TEST_CASE("TensorDataset, Subset and random_split", "[data]") {
  auto dataset = std::make_shared<data::TensorDataset>(arange(0, 20, 1, kFloat32).reshape({10, 2}), arange(10));
  CHECK(dataset->get(3).data.data_ptr<float>()[1] == 7.0f);
  data::Example<> batch = dataset->get_batch({4, 1});
  CHECK(batch.data.shape() == Shape{2, 2});
  CHECK(batch.target.data_ptr<int64_t>()[0] == 4);
  CHECK_THROWS_WITH(dataset->get(10), Contains("out of range"));
  CHECK_THROWS_WITH(data::TensorDataset(zeros({3, 2}), zeros({4})), Contains("3 data rows but 4 targets"));

  auto parts = data::random_split(dataset, {7, 3}, 42);
  auto again = data::random_split(dataset, {7, 3}, 42);
  CHECK(parts[0]->indices() == again[0]->indices());
  std::set<int64_t> seen(parts[0]->indices().begin(), parts[0]->indices().end());
  seen.insert(parts[1]->indices().begin(), parts[1]->indices().end());
  CHECK(seen.size() == 10);
  CHECK(parts[1]->get(0).target.item<int64_t>() == parts[1]->indices()[0]);
  CHECK_THROWS_WITH(data::random_split(dataset, {5, 3}, 1), Contains("add up to 8"));
}

TEST_CASE("DataLoader batches, shuffles reproducibly and drops the last batch on request", "[data][loader]") {
  auto dataset = std::make_shared<data::TensorDataset>(arange(0, 10, 1, kFloat32).reshape({10, 1}), arange(10));
  data::DataLoader plain(dataset, data::DataLoaderOptions(4));
  CHECK(plain.size() == 3);
  std::vector<int64_t> sizes, order;
  for (const data::Example<>& batch : plain) {
    sizes.push_back(batch.data.size(0));
    for (int64_t i = 0; i < batch.target.numel(); ++i) order.push_back(batch.target.data_ptr<int64_t>()[i]);
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  CHECK(order == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  data::DataLoader dropping(dataset, data::DataLoaderOptions(4).drop_last(true));
  CHECK(dropping.size() == 2);

  auto epoch_order = [&](data::DataLoader& loader) {
    std::vector<int64_t> out;
    for (const auto& batch : loader)
      for (int64_t i = 0; i < batch.target.numel(); ++i) out.push_back(batch.target.data_ptr<int64_t>()[i]);
    return out;
  };
  data::DataLoader a(dataset, data::DataLoaderOptions(3).shuffle(true).seed(7));
  data::DataLoader b(dataset, data::DataLoaderOptions(3).shuffle(true).seed(7).prefetch(false));
  std::vector<int64_t> first = epoch_order(a), second = epoch_order(a);
  CHECK(first == epoch_order(b));
  CHECK(second == epoch_order(b));
  CHECK(first != second);  // a new shuffle each epoch
  std::vector<int64_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK_THROWS_WITH(data::DataLoader(dataset, data::DataLoaderOptions(0)), Contains("batch_size"));
}

namespace {
struct FailingDataset : data::Dataset {
  int64_t size() const override { return 4; }
  data::Example<> get(int64_t index) const override {
    XG_CHECK(index != 2, "FailingDataset: example {} is unreadable", index);
    return {full({1}, double(index)), full({1}, double(index), kInt64)};
  }
};
}  // namespace

TEST_CASE("a dataset error on the prefetch thread reaches the caller", "[data][loader]") {
  data::DataLoader loader(std::make_shared<FailingDataset>(), data::DataLoaderOptions(1));
  auto iterate = [&] {
    for (const auto& batch : loader) (void)batch;
  };
  CHECK_THROWS_WITH(iterate(), Contains("example 2 is unreadable"));
}

TEST_CASE("transforms: normalize, translate, flip, compose; randomness is reproducible", "[data][transforms]") {
  std::mt19937_64 gen(1);
  Tensor image = zeros({1, 1, 5, 5});
  image.data_ptr<float>()[12] = 1.0f;  // centre pixel
  Tensor normalized = data::transforms::Normalize({0.5}, {0.25})(image, gen);
  CHECK(normalized.data_ptr<float>()[0] == Approx(-2.0));
  CHECK(normalized.data_ptr<float>()[12] == Approx(2.0));

  Tensor same = data::transforms::RandomTranslate(0)(image, gen);
  CHECK(equal(same, image));
  Tensor moved = data::transforms::RandomTranslate(2)(image, gen);
  CHECK(moved.sum().item<float>() == 1.0f);  // the pixel stays inside a 5x5 image for shifts up to 2
  int64_t position = argmax(moved).item<int64_t>();
  CHECK(std::abs(position / 5 - 2) <= 2);
  CHECK(std::abs(position % 5 - 2) <= 2);

  Tensor row = arange(0, 3, 1, kFloat32).reshape({1, 1, 1, 3});
  Tensor flipped = data::transforms::RandomHorizontalFlip(1.0)(row, gen);
  CHECK(flipped.data_ptr<float>()[0] == 2.0f);
  CHECK(equal(data::transforms::RandomHorizontalFlip(0.0)(row, gen), row));

  data::transforms::Compose both({data::transforms::RandomTranslate(1), data::transforms::Normalize({0.0}, {2.0})});
  std::mt19937_64 g1(5), g2(5);
  Tensor batch = rand({4, 1, 6, 6});
  CHECK(equal(both(batch, g1), both(batch, g2)));
  CHECK_THROWS_WITH(data::transforms::Normalize({0.0}, {0.0}), Contains("positive"));
  CHECK_THROWS_WITH(data::transforms::RandomTranslate(1)(zeros({3, 3}), gen), Contains("[N, C, H, W]"));

  // With a random transform, prefetching does not change the result.
  auto dataset = std::make_shared<data::TensorDataset>(rand({8, 1, 6, 6}), arange(8));
  data::BatchTransform translate = data::transforms::RandomTranslate(2);
  data::DataLoader with(dataset, data::DataLoaderOptions(3).shuffle(true).seed(3), translate);
  data::DataLoader without(dataset, data::DataLoaderOptions(3).shuffle(true).seed(3).prefetch(false), translate);
  auto b1 = with.begin(), b2 = without.begin();
  for (; b1 != with.end(); ++b1, ++b2) CHECK(equal(b1->data, b2->data));
}
