#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <pthread.h>
#endif

namespace autoscale {

// A single background thread that runs tasks one after another in the order
// they were enqueued. An exception thrown by a task is stored (the first one
// wins) and rethrown, with its original type and message, by the next call to
// `synchronize()`; the tasks after it still run.
//
// Finished tasks are destroyed by the calling thread (in the next `enqueue`,
// `wait` or `synchronize`), never by the worker: releasing captured tensors
// may touch their Python objects and need the GIL, which a caller blocked in
// `synchronize()` holds.
class Worker {
 public:
  using Task = std::function<void()>;

  Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void enqueue(Task task) {
    std::vector<Task> finished;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished.swap(finished_);
      queue_.push(std::move(task));
      if (!started_) {  // Started lazily: CPU-only processes never start it.
        std::thread([this] { loop(); }).detach();
        started_ = true;
      }
    }
    work_cv_.notify_one();
  }

  // Blocks until every enqueued task has finished; a stored error is kept.
  void wait() {
    std::vector<Task> finished;
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
    finished.swap(finished_);
  }

  // Blocks until every enqueued task has finished and rethrows the first
  // error one of them raised since the last call.
  void synchronize() {
    std::vector<Task> finished;
    std::exception_ptr error;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
      finished.swap(finished_);
      error = std::exchange(error_, nullptr);
    }
    if (error)
      std::rethrow_exception(error);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      work_cv_.wait(lock, [this] { return !queue_.empty(); });
      auto task = std::move(queue_.front());
      queue_.pop();
      busy_ = true;
      lock.unlock();
      std::exception_ptr error;
      try {
        task();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      finished_.push_back(std::move(task));
      if (error && !error_)
        error_ = error;
      busy_ = false;
      if (queue_.empty())
        done_cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::queue<Task> queue_;
  std::vector<Task> finished_;
  bool started_ = false;
  bool busy_ = false;
  std::exception_ptr error_;
};

// The process-wide worker. Intentionally leaked (and its thread detached) so
// that nothing is joined or destroyed while the interpreter shuts down. A
// forked child (e.g. a data loader worker) gets a fresh, idle worker: the
// parent's thread does not exist there and its lock may be held forever.
inline Worker*& worker_instance() {
  static Worker* instance = new Worker();
  return instance;
}

inline Worker& worker() {
#ifndef _WIN32
  static const int registered = pthread_atfork(
      nullptr, nullptr, [] { worker_instance() = new Worker(); });
  (void)registered;
#endif
  return *worker_instance();
}

}  // namespace autoscale
