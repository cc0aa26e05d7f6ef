// A small generative adversarial network on Fashion-MNIST: an MLP generator G turns 64 random numbers into
// a 28x28 image, an MLP discriminator D tells real images from generated ones, and the two are trained
// against each other with two optimizers (Goodfellow et al. 2014, with the non-saturating generator loss):
//
//   D step: maximise log D(x) + log(1 - D(G(z)))   -- G(z) detached: this step must not move G
//   G step: maximise log D(G(z))                   -- gradients flow through D into G; only G's optimizer steps
//
// G: 64 -> 256 -> 512 -> 784 (LeakyReLU 0.2, tanh output in [-1, 1]); D: 784 -> 512 -> 256 -> 1 (LeakyReLU 0.2,
// a logit); Adam(2e-4, betas 0.5, 0.999) for both, as DCGAN recommends.
//
// Every --sample-every epochs (and after the last) it writes samples_epoch_NNN.png, an 8x8 grid generated
// from the same 64 noise vectors, so the files show G improving; real.png shows real images for comparison.
// GAN losses do not go down steadily, so the learning check is a plain statistic of the samples: the distance
// between the per-pixel mean and standard deviation of 1,000 generated and 1,000 real images ("moment
// distance"); it must end lower than for the untrained generator.
//
// smoke-test: --epochs 1 --limit-train 2048 --no-progress
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "common/png.hpp"
#include "common/training.hpp"

namespace nn = xg::nn;
namespace F = xg::nn::functional;
namespace fs = std::filesystem;
using xg::Tensor;

namespace {

constexpr int64_t kLatent = 64;
constexpr int64_t kPixels = 28 * 28;

nn::Sequential make_generator() {
  return nn::Sequential(nn::Linear(kLatent, 256), nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)), nn::Linear(256, 512),
                        nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)), nn::Linear(512, kPixels), nn::Tanh());
}

nn::Sequential make_discriminator() {
  return nn::Sequential(nn::Linear(kPixels, 512), nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)), nn::Linear(512, 256),
                        nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)), nn::Linear(256, 1));
}

/// Per-pixel mean and standard deviation of images [N, 784]: [2, 784].
Tensor pixel_moments(const Tensor& images) { return xg::stack({images.mean({0}), images.std({0})}, 0); }

/// Root-mean-square difference of the per-pixel moments of generated and real images.
double moment_distance(const Tensor& generated, const Tensor& real_moments) {
  return (pixel_moments(generated) - real_moments).pow(2.0).mean().sqrt().item<double>();
}

struct EpochRecord {
  int64_t epoch;
  double d_loss, g_loss, d_real, d_fake, distance, seconds;
};

void write_csv(const std::string& path, const std::vector<EpochRecord>& history) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    XG_CHECK(out.good(), "gan_fashion_mnist: cannot write '{}'", temporary);
    out << "epoch,d_loss,g_loss,d_real,d_fake,moment_distance,seconds\n";
    for (const auto& r : history)
      out << fmt::format("{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{:.3f}\n", r.epoch, r.d_loss, r.g_loss, r.d_real, r.d_fake, r.distance,
                         r.seconds);
  }
  fs::rename(temporary, path);
}

}  // namespace

/// main's body: training::run_main reports any exception that leaves it and exits non-zero.
int example_main(int argc, char** argv) {
  CLI::App app{"A small GAN (MLP generator and discriminator) on Fashion-MNIST, writing PNG grids of generated samples"};
  training::CommonOptions common;
  common.epochs = 10;
  common.batch_size = 64;
  common.lr = 2e-4;
  common.val_fraction = 0.0;
  training::add_common_options(app, common);
  // Options of the classifier loop that mean nothing for a GAN.
  for (const char* name : {"--patience", "--val-fraction", "--limit-test"}) app.remove_option(app.get_option(name));
  int64_t sample_every = 2;
  app.add_option("--sample-every", sample_every, "Write a PNG grid of samples every N epochs (and after the last)")
      ->capture_default_str()
      ->check(training::size_range(1000000));
  CLI11_PARSE(app, argc, argv);
  if (sample_every <= 0) {
    std::cerr << "error: --sample-every must be positive (see --help)\n";
    return 2;
  }
  training::apply_common_options(common, "gan_fashion_mnist");
  const auto start = std::chrono::steady_clock::now();

  const training::DataSplits data = training::load_fashion_mnist(common);
  // Images to [-1, 1], the range of the generator's tanh.
  const xg::data::transforms::Normalize to_symmetric({0.5}, {0.5});
  xg::data::DataLoader loader(data.train, xg::data::DataLoaderOptions(common.batch_size).shuffle(true).drop_last(true).seed(common.seed + 1),
                              to_symmetric);

  // Fixed before anything else draws from the generator, so a resumed run shows the same 64 faces of G.
  const Tensor fixed_noise = xg::randn({64, kLatent});
  nn::Sequential generator = make_generator();
  nn::Sequential discriminator = make_discriminator();
  const auto adam = xg::optim::AdamOptions(common.lr).betas({0.5, 0.999});
  xg::optim::Adam generator_optimizer(generator->parameters(), adam);
  xg::optim::Adam discriminator_optimizer(discriminator->parameters(), adam);

  // 1,000 real images for the moment statistics (and 64 for real.png).
  Tensor real_sample;
  {
    std::vector<int64_t> indices;
    const int64_t count = std::min<int64_t>(1000, data.train->size());
    for (int64_t i = 0; i < count; ++i) indices.push_back(i * data.train->size() / count);
    real_sample = data.train->get_batch(indices).data.flatten(1) * 2.0 - 1.0;
  }
  const Tensor real_moments = pixel_moments(real_sample);
  auto sample_distance = [&] {
    xg::NoGradGuard no_grad;
    return moment_distance(generator(xg::randn({real_sample.size(0), kLatent})), real_moments);
  };
  const fs::path out(common.out_dir);
  png::write_image_grid((out / "real.png").string(), real_sample.narrow(0, 0, std::min<int64_t>(64, real_sample.size(0))).view({-1, 28, 28}),
                        8, -1.0, 1.0);

  xg::optim::Checkpoint checkpoint;
  checkpoint.add("generator", generator)
      .add("discriminator", discriminator)
      .add("generator_optimizer", generator_optimizer)
      .add("discriminator_optimizer", discriminator_optimizer);
  const std::string checkpoint_path = (out / "checkpoint.safetensors").string();

  std::cout << fmt::format("gan_fashion_mnist: G {} parameters, D {} parameters; {} training images, batch {}, {} epochs, Adam lr {}\n",
                           generator->num_parameters(), discriminator->num_parameters(), data.train->size(), common.batch_size,
                           common.epochs, common.lr);

  std::vector<EpochRecord> history;
  int64_t start_epoch = 0;
  double initial_distance = 0.0;
  if (common.resume && fs::exists(checkpoint_path)) {
    xg::optim::CheckpointState state = checkpoint.load(checkpoint_path);
    auto loader_state = state.text.find("loader");
    auto initial = state.scalars.find("initial_distance");
    auto table = state.tensors.find("history");
    XG_CHECK(loader_state != state.text.end() && initial != state.scalars.end() && table != state.tensors.end(),
             "gan_fashion_mnist: '{}' lacks the loader, initial_distance or history entries", checkpoint_path);
    loader.set_generator_state(loader_state->second);
    initial_distance = initial->second;
    start_epoch = state.epoch;
    const Tensor& rows = table->second;
    XG_CHECK(rows.dim() == 2 && rows.size(1) == 7 && rows.dtype() == xg::kFloat64, "gan_fashion_mnist: '{}': bad history table",
             checkpoint_path);
    const double* v = rows.data_ptr<double>();
    for (int64_t r = 0; r < rows.size(0) && static_cast<int64_t>(v[r * 7]) <= start_epoch; ++r)
      history.push_back({static_cast<int64_t>(v[r * 7]), v[r * 7 + 1], v[r * 7 + 2], v[r * 7 + 3], v[r * 7 + 4], v[r * 7 + 5], v[r * 7 + 6]});
    std::cout << fmt::format("resumed from {} after epoch {}\n", checkpoint_path, start_epoch);
  } else {
    if (common.resume) std::cout << fmt::format("note: --resume: no checkpoint at {}, starting from scratch\n", checkpoint_path);
    initial_distance = sample_distance();
    std::cout << fmt::format("epoch 0 (untrained generator): moment distance {:.4f}\n", initial_distance);
  }

  const Tensor ones = xg::ones({common.batch_size, 1}), zeros = xg::zeros({common.batch_size, 1});
  for (int64_t epoch = start_epoch + 1; epoch <= common.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    generator->train();
    discriminator->train();
    training::ProgressBar progress(fmt::format("epoch {}/{}", epoch, common.epochs), loader.size(), !common.no_progress);
    double d_loss_sum = 0, g_loss_sum = 0, d_real_sum = 0, d_fake_sum = 0;
    int64_t batches = 0;
    for (const auto& batch : loader) {
      const Tensor real = batch.data.flatten(1);
      const Tensor fake = generator(xg::randn({real.size(0), kLatent}));

      // D step on real and generated images. detach(): this loss must not reach G's parameters.
      discriminator_optimizer.zero_grad();
      const Tensor real_logits = discriminator(real);
      const Tensor fake_logits = discriminator(fake.detach());
      const Tensor d_loss = F::binary_cross_entropy_with_logits(real_logits, ones) + F::binary_cross_entropy_with_logits(fake_logits, zeros);
      d_loss.backward();
      discriminator_optimizer.step();

      // G step: make D call the same images real. The gradient passes through D (whose .grad() it also
      // fills; the next D step zeroes that) into G, and only G's optimizer steps.
      generator_optimizer.zero_grad();
      const Tensor g_loss = F::binary_cross_entropy_with_logits(discriminator(fake), ones);
      g_loss.backward();
      generator_optimizer.step();

      const double d_value = d_loss.item<double>(), g_value = g_loss.item<double>();
      if (!std::isfinite(d_value) || !std::isfinite(g_value)) {
        progress.finish();
        std::cerr << fmt::format("error: the losses became {} (D) and {} (G) in epoch {}; try a smaller --lr\n", d_value, g_value, epoch);
        return 1;
      }
      {
        xg::NoGradGuard no_grad;
        d_real_sum += xg::sigmoid(real_logits).mean().item<double>();
        d_fake_sum += xg::sigmoid(fake_logits).mean().item<double>();
      }
      d_loss_sum += d_value;
      g_loss_sum += g_value;
      ++batches;
      progress.update(real.size(0), d_value);
    }
    progress.finish();
    const double n = static_cast<double>(std::max<int64_t>(batches, 1));
    EpochRecord record{epoch, d_loss_sum / n, g_loss_sum / n, d_real_sum / n, d_fake_sum / n, sample_distance(), 0.0};
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    history.push_back(record);

    std::string picture;
    if (epoch % sample_every == 0 || epoch == common.epochs) {
      xg::NoGradGuard no_grad;
      generator->eval();
      picture = (out / fmt::format("samples_epoch_{:03d}.png", epoch)).string();
      png::write_image_grid(picture, generator(fixed_noise).view({-1, 28, 28}), 8, -1.0, 1.0);
    }

    Tensor table = xg::zeros({static_cast<int64_t>(history.size()), 7}, xg::kFloat64);
    double* cell = table.data_ptr<double>();
    for (const auto& r : history)
      for (double value : {static_cast<double>(r.epoch), r.d_loss, r.g_loss, r.d_real, r.d_fake, r.distance, r.seconds}) *cell++ = value;
    xg::optim::CheckpointState state;
    state.epoch = epoch;
    state.scalars["initial_distance"] = initial_distance;
    state.tensors["history"] = table;
    state.text["loader"] = loader.generator_state();
    checkpoint.save(checkpoint_path, state);
    write_csv((out / "metrics.csv").string(), history);

    std::cout << fmt::format("epoch {}/{}: D loss {:.4f}, G loss {:.4f}, D(real) {:.3f}, D(G(z)) {:.3f}, moment distance {:.4f} | {}{}\n",
                             epoch, common.epochs, record.d_loss, record.g_loss, record.d_real, record.d_fake, record.distance,
                             training::format_duration(record.seconds), picture.empty() ? "" : " | " + picture)
              << std::flush;
    if (common.stop_after > 0 && epoch >= common.stop_after && epoch < common.epochs) {
      std::cout << fmt::format("stopping after epoch {} (--stop-after); continue with --resume\n", epoch);
      break;
    }
  }

  const double final_distance = history.empty() ? initial_distance : history.back().distance;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("gan_fashion_mnist: moment distance {:.4f} -> {:.4f} after {} epochs in {}; outputs in {}/ ({}{})\n",
                           initial_distance, final_distance, history.empty() ? 0 : history.back().epoch,
                           training::format_duration(seconds), common.out_dir, history.empty() ? "" : "samples_epoch_*.png, ",
                           training::written_outputs(common.out_dir, {"real.png", "metrics.csv", "checkpoint.safetensors"}));
  if (!history.empty() && !(final_distance < initial_distance)) {
    std::cerr << "error: the generated images did not get closer to the real ones (moment distance did not go down)\n";
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) { return training::run_main(argc, argv, example_main); }
