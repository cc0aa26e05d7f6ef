#include "xgrad/data/dataloader.hpp"

#include <numeric>
#include <sstream>

#include "xgrad/autograd/grad_mode.hpp"
#include "xgrad/autograd/random.hpp"

namespace xg::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options, BatchTransform transform)
    : dataset_(std::move(dataset)), options_(options), transform_(std::move(transform)) {
  XG_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  XG_CHECK(options_.batch_size_ > 0, "DataLoader: batch_size must be positive, got {}", options_.batch_size_);
  XG_CHECK(!(options_.sampler_ && options_.shuffle_),
           "DataLoader: sampler and shuffle=true are mutually exclusive (let the sampler shuffle)");
  // make_data_loader's options would be silently ignored here.
  XG_CHECK(options_.workers_ == 0 && !options_.max_jobs_ && !options_.timeout_ && options_.enforce_ordering_,
           "DataLoader: workers, max_jobs, timeout and enforce_ordering are options of make_data_loader; DataLoader "
           "prepares one batch ahead on a background thread (prefetch)");
  if (options_.seed_) {
    generator_.seed(*options_.seed_);
  } else {
    auto lock = random::lock_generator();
    generator_.seed(random::generator()());
  }
}

int64_t DataLoader::size() const {
  const int64_t n = options_.sampler_ ? options_.sampler_->size() : dataset_->size(), b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

std::string DataLoader::generator_state() const {
  std::ostringstream out;
  out << generator_;
  return out.str();
}

void DataLoader::set_generator_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  XG_CHECK(!in.fail(), "DataLoader: the generator state string is not valid");
  generator_ = restored;
}

DataLoader::Iterator DataLoader::begin() {
  auto plan = std::make_shared<Iterator::Plan>();
  if (options_.sampler_) {
    plan->order = options_.sampler_->indices();
    XG_CHECK(static_cast<int64_t>(plan->order.size()) == options_.sampler_->size(),
             "DataLoader: the sampler gave {} indices but its size() is {}", plan->order.size(), options_.sampler_->size());
    for (int64_t index : plan->order)
      XG_CHECK(index >= 0 && index < dataset_->size(), "DataLoader: the sampler gave index {} for a dataset of size {}",
               index, dataset_->size());
  } else {
    plan->order.resize(static_cast<size_t>(dataset_->size()));
    std::iota(plan->order.begin(), plan->order.end(), int64_t{0});
  }
  if (options_.shuffle_) {
    for (int64_t i = static_cast<int64_t>(plan->order.size()) - 1; i > 0; --i)
      std::swap(plan->order[i], plan->order[generator_() % static_cast<uint64_t>(i + 1)]);
  }
  for (int64_t b = 0; b < size(); ++b) plan->transform_seeds.push_back(transform_ ? generator_() : 0);
  return Iterator(this, plan, 0);
}

DataLoader::Iterator DataLoader::end() { return Iterator(this, nullptr, size()); }

Example<> DataLoader::make_batch(const std::vector<int64_t>& order, int64_t batch, uint64_t transform_seed) const {
  NoGradGuard no_grad;  // data preparation never records (also on the prefetch thread)
  const int64_t b = options_.batch_size_;
  const int64_t begin = batch * b, end = std::min<int64_t>(begin + b, static_cast<int64_t>(order.size()));
  std::vector<int64_t> indices(order.begin() + begin, order.begin() + end);
  Example<> example = dataset_->get_batch(indices);
  if (transform_) {
    std::mt19937_64 generator(transform_seed);
    example.data = transform_(example.data, generator);
  }
  return example;
}

DataLoader::Iterator::Iterator(const DataLoader* loader, std::shared_ptr<Plan> plan, int64_t position)
    : loader_(loader), plan_(std::move(plan)), position_(position) {
  if (plan_ && position_ < loader_->size()) {
    if (loader_->options_.prefetch_) next_ = std::make_shared<std::future<Example<>>>(launch(position_));
    load_current();
  }
}

std::future<Example<>> DataLoader::Iterator::launch(int64_t batch) const {
  auto plan = plan_;
  const DataLoader* loader = loader_;
  return std::async(std::launch::async, [plan, loader, batch] { return loader->make_batch(plan->order, batch, plan->transform_seeds[batch]); });
}

void DataLoader::Iterator::load_current() {
  if (next_) {
    current_ = next_->get();  // rethrows a loading error on the caller's thread
    next_.reset();
    if (position_ + 1 < loader_->size()) next_ = std::make_shared<std::future<Example<>>>(launch(position_ + 1));
  } else {
    current_ = loader_->make_batch(plan_->order, position_, plan_->transform_seeds[position_]);
  }
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++position_;
  if (position_ < loader_->size()) load_current();
  else {
    current_ = Example<>{};
    next_.reset();
  }
  return *this;
}

}  // namespace xg::data
