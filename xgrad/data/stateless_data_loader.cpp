#include "xgrad/data/stateless_data_loader.hpp"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

#include "xgrad/autograd/error.hpp"
#include "xgrad/autograd/random.hpp"

namespace xg::data::detail {

struct LoaderWorkers::State {
  struct Job {
    uint64_t epoch, sequence;
    Work work;
  };
  std::mutex mutex;
  std::condition_variable job_ready, result_ready;
  std::deque<Job> jobs;
  std::map<uint64_t, LoaderResult> results;  // this epoch's finished jobs, by sequence number
  uint64_t epoch = 0, next_sequence = 0;
  bool stopping = false;
  std::vector<std::thread> threads;

  void run(size_t worker) {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex);
        job_ready.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (stopping) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      LoaderResult result;
      result.sequence = job.sequence;
      try {
        result.batch = job.work(worker);
      } catch (...) {
        result.error = std::current_exception();
      }
      job.work = nullptr;  // release the request before taking the lock
      std::lock_guard<std::mutex> lock(mutex);
      if (job.epoch != epoch) continue;  // an abandoned epoch's batch
      results.emplace(job.sequence, std::move(result));
      result_ready.notify_all();
    }
  }
};

LoaderWorkers::LoaderWorkers(size_t workers) : state_(std::make_unique<State>()) {
  try {
    for (size_t w = 0; w < workers; ++w) state_->threads.emplace_back([state = state_.get(), w] { state->run(w); });
  } catch (const std::system_error& e) {
    const size_t started = state_->threads.size();
    join();
    XG_ERROR("make_data_loader: could not start {} worker threads (started {}): {}", workers, started, e.what());
  }
}

LoaderWorkers::~LoaderWorkers() { join(); }

void LoaderWorkers::start_epoch() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  ++state_->epoch;
  state_->jobs.clear();
  state_->results.clear();
  state_->next_sequence = 0;
}

void LoaderWorkers::submit(uint64_t sequence, Work work) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->jobs.push_back(State::Job{state_->epoch, sequence, std::move(work)});
  }
  state_->job_ready.notify_one();
}

LoaderResult LoaderWorkers::next(bool in_order, const std::optional<std::chrono::milliseconds>& timeout) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  auto ready = [&] {
    return in_order ? state_->results.count(state_->next_sequence) > 0 : !state_->results.empty();
  };
  if (timeout) {
    XG_CHECK(state_->result_ready.wait_for(lock, *timeout, ready),
             "DataLoader: no batch arrived from the {} worker(s) within the timeout of {} ms", state_->threads.size(),
             timeout->count());
  } else {
    state_->result_ready.wait(lock, ready);
  }
  auto it = in_order ? state_->results.find(state_->next_sequence) : state_->results.begin();
  LoaderResult result = std::move(it->second);
  state_->results.erase(it);
  ++state_->next_sequence;
  return result;
}

void LoaderWorkers::join() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
    state_->jobs.clear();
  }
  state_->job_ready.notify_all();
  for (std::thread& t : state_->threads)
    if (t.joinable()) t.join();
  state_->threads.clear();
}

void check_loader_options(const DataLoaderOptions& options) {
  XG_CHECK(options.batch_size_ > 0, "make_data_loader: batch_size must be positive, got {}", options.batch_size_);
  XG_CHECK(!options.max_jobs_ || *options.max_jobs_ > 0, "make_data_loader: max_jobs must be positive, got 0");
  XG_CHECK(!options.max_jobs_ || options.workers_ > 0,
           "make_data_loader: max_jobs needs workers (with workers(0) each batch is made when the iterator advances)");
  XG_CHECK(!options.timeout_ || options.timeout_->count() > 0, "make_data_loader: timeout must be positive, got {} ms",
           options.timeout_ ? options.timeout_->count() : 0);
  XG_CHECK(!options.shuffle_ && !options.sampler_,
           "make_data_loader: shuffle and sampler are options of the classic xg::data::DataLoader; here pass the sampler as "
           "make_data_loader<samplers::RandomSampler>(dataset, options) or make_data_loader(dataset, sampler, options)");
}

uint64_t loader_seed(const DataLoaderOptions& options) {
  if (options.seed_) return *options.seed_;
  auto lock = random::lock_generator();
  return random::generator()();
}

std::string generator_to_string(const std::mt19937_64& generator) {
  std::ostringstream out;
  out << generator;
  return out.str();
}

std::mt19937_64 generator_from_string(const std::string& state, const char* loader) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  XG_CHECK(!in.fail(), "{}: the generator state string is not valid (expected the text of generator_state())", loader);
  return restored;
}

void rethrow_worker_error(const std::exception_ptr& error, uint64_t sequence) {
  try {
    std::rethrow_exception(error);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    XG_ERROR("DataLoader: a worker failed while making batch {} of the epoch: {}", sequence, e.what());
  } catch (...) {
    XG_ERROR("DataLoader: a worker failed while making batch {} of the epoch (an exception that is not a std::exception)", sequence);
  }
}

}  // namespace xg::data::detail
