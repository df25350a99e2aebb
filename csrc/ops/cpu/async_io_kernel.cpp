#include "ops/cpu/async_io_kernel.h"

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/async_io.h"
#include "utils/thread.h"

namespace autoscale::ops {

namespace {

int64_t row_bytes(const at::Tensor& t) {
  return t.size(1) * static_cast<int64_t>(t.element_size());
}

// Rows per parallel task: about 64 KiB each.
int64_t grain_size(int64_t row_bytes) {
  return std::max<int64_t>(
      1, (int64_t{1} << 16) / std::max<int64_t>(1, row_bytes));
}

// Start of every run within the packed rows: ptr[i] = sum(count[:i]).
std::vector<int64_t> run_ptr(const at::Tensor& count) {
  const auto* count_data = count.const_data_ptr<int64_t>();
  std::vector<int64_t> ptr(count.numel() + 1, 0);
  for (int64_t i = 0; i < count.numel(); ++i)
    ptr[i + 1] = ptr[i] + count_data[i];
  return ptr;
}

// Calls `fn(packed_row, table_row, num_rows)` for the pieces of the runs that
// cover the packed rows [begin, end); packed row r of run i is table row
// offset[i] + r - ptr[i].
template <typename Fn>
void for_each_run(const int64_t* offset,
                  const std::vector<int64_t>& ptr,
                  int64_t begin,
                  int64_t end,
                  const Fn& fn) {
  // The run holding `begin` (upper_bound steps over empty runs).
  auto i = std::upper_bound(ptr.begin(), ptr.end(), begin) - ptr.begin() - 1;
  for (auto r = begin; r < end; ++i) {
    const auto stop = std::min(end, ptr[i + 1]);
    if (stop > r)
      fn(r, offset[i] + r - ptr[i], stop - r);
    r = stop;
  }
}

void read_async_kernel(const at::Tensor& src,
                       const std::optional<at::Tensor>& offset,
                       const std::optional<at::Tensor>& count,
                       const at::Tensor& index,
                       const at::Tensor& buffer,
                       const at::Tensor& dst) {
  const auto n = check_read_async(src, offset, count, index, buffer, dst);
  worker().wait();  // Pending CUDA writes land first: call order is kept.
  gather_rows(src, offset, count, index, buffer);
  if (n == 0 || buffer.data_ptr() == dst.data_ptr())
    return;
  const auto bytes = row_bytes(src);
  const auto* from = static_cast<const char*>(buffer.const_data_ptr());
  auto* to = static_cast<char*>(dst.data_ptr());
  at::parallel_for(0, n, grain_size(bytes), [&](int64_t begin, int64_t end) {
    std::memcpy(
        to + begin * bytes, from + begin * bytes, (end - begin) * bytes);
  });
}

void write_async_kernel(const at::Tensor& src,
                        const at::Tensor& offset,
                        const at::Tensor& count,
                        const at::Tensor& dst) {
  check_write_async(src, offset, count, dst);
  worker().wait();  // Pending CUDA work lands first: call order is kept.
  scatter_rows(src, offset, count, dst);
}

}  // namespace

void gather_rows(const at::Tensor& src,
                 const std::optional<at::Tensor>& offset,
                 const std::optional<at::Tensor>& count,
                 const at::Tensor& index,
                 const at::Tensor& out) {
  const auto bytes = row_bytes(src);
  if (bytes == 0)
    return;
  const auto ptr =
      offset.has_value() ? run_ptr(*count) : std::vector<int64_t>{0};
  const auto num_run_rows = ptr.back();
  const auto n = num_run_rows + index.numel();
  const auto* offset_data =
      offset.has_value() ? offset->const_data_ptr<int64_t>() : nullptr;
  const auto* index_data = index.const_data_ptr<int64_t>();
  const auto* src_data = static_cast<const char*>(src.const_data_ptr());
  auto* out_data = static_cast<char*>(out.data_ptr());

  at::parallel_for(0, n, grain_size(bytes), [&](int64_t begin, int64_t end) {
    const auto split = std::clamp(num_run_rows, begin, end);
    for_each_run(
        offset_data,
        ptr,
        begin,
        split,
        [&](int64_t p, int64_t t, int64_t rows) {
          std::memcpy(out_data + p * bytes, src_data + t * bytes, rows * bytes);
        });
    for (auto r = split; r < end; ++r) {
      std::memcpy(out_data + r * bytes,
                  src_data + index_data[r - num_run_rows] * bytes,
                  bytes);
    }
  });
}

void scatter_rows(const at::Tensor& src,
                  const at::Tensor& offset,
                  const at::Tensor& count,
                  const at::Tensor& dst) {
  const auto bytes = row_bytes(src);
  if (bytes == 0)
    return;
  const auto ptr = run_ptr(count);
  const auto* offset_data = offset.const_data_ptr<int64_t>();
  const auto* src_data = static_cast<const char*>(src.const_data_ptr());
  auto* dst_data = static_cast<char*>(dst.data_ptr());
  at::parallel_for(
      0, ptr.back(), grain_size(bytes), [&](int64_t begin, int64_t end) {
        for_each_run(offset_data,
                     ptr,
                     begin,
                     end,
                     [&](int64_t p, int64_t t, int64_t rows) {
                       std::memcpy(dst_data + t * bytes,
                                   src_data + p * bytes,
                                   rows * bytes);
                     });
      });
}

TORCH_LIBRARY_IMPL(torch_autoscale, CPU, m) {
  m.impl("read_async", &read_async_kernel);
  m.impl("write_async", &write_async_kernel);
}

}  // namespace autoscale::ops
