#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <utility>

#ifndef _WIN32
#include <pthread.h>
#endif

namespace autoscale {

// A single background thread that runs tasks one after another in the order
// they were enqueued. An exception thrown by a task is stored (the first one
// wins) and rethrown, with its original type and message, by the next call to
// `synchronize()`; the tasks after it still run.
class Worker {
 public:
  Worker() = default;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void enqueue(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
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
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  }

  // Blocks until every enqueued task has finished and rethrows the first
  // error one of them raised since the last call.
  void synchronize() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
    if (error_)
      std::rethrow_exception(std::exchange(error_, nullptr));
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
      task = nullptr;  // Releases the captured tensors before reporting done.
      lock.lock();
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
  std::queue<std::function<void()>> queue_;
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
