#include "ops/async_io.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "utils/check.h"

namespace autoscale::ops {

namespace {

void check_table(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 2,
                    op,
                    ": '",
                    name,
                    "' must be two-dimensional [num_rows, num_channels] (got ",
                    t.dim(),
                    " dimensions)");
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": '", name, "' must be contiguous");
}

void check_like_src(const at::Tensor& t,
                    const at::Tensor& src,
                    const char* op,
                    const char* name) {
  TORCH_CHECK_VALUE(t.scalar_type() == src.scalar_type(),
                    op,
                    ": '",
                    name,
                    "' must have the same dtype as 'src'");
  TORCH_CHECK_VALUE(t.size(1) == src.size(1),
                    op,
                    ": '",
                    name,
                    "' has rows of ",
                    t.size(1),
                    " channels but 'src' has ",
                    src.size(1));
}

// Checks that every run lies within the `num_rows` rows of `table` and
// returns the total number of rows the runs cover.
int64_t check_runs(const at::Tensor& offset,
                   const at::Tensor& count,
                   int64_t num_rows,
                   const char* op,
                   const char* table) {
  TORCH_CHECK_VALUE(offset.numel() == count.numel(),
                    op,
                    ": 'offset' has ",
                    offset.numel(),
                    " entries but 'count' has ",
                    count.numel());
  const auto* offset_data = offset.const_data_ptr<int64_t>();
  const auto* count_data = count.const_data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t i = 0; i < offset.numel(); ++i) {
    const auto o = offset_data[i], c = count_data[i];
    TORCH_CHECK_VALUE(0 <= o && o <= num_rows && 0 <= c && c <= num_rows - o,
                      op,
                      ": run ",
                      i,
                      " (offset ",
                      o,
                      ", count ",
                      c,
                      ") is out of range for '",
                      table,
                      "' with ",
                      num_rows,
                      " rows");
    total += c;
  }
  return total;
}

// Runs written in parallel must not overlap: checks the non-empty runs in
// order of their offsets (ties in call order).
void check_disjoint_runs(const at::Tensor& offset,
                         const at::Tensor& count,
                         const char* op) {
  const auto* offset_data = offset.const_data_ptr<int64_t>();
  const auto* count_data = count.const_data_ptr<int64_t>();
  std::vector<int64_t> order(offset.numel());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return offset_data[a] < offset_data[b];
  });
  int64_t prev = -1;
  for (const auto i : order) {
    if (count_data[i] == 0)
      continue;
    TORCH_CHECK_VALUE(prev < 0 ||
                          offset_data[prev] + count_data[prev] <=
                              offset_data[i],
                      op,
                      ": runs must not overlap, but run ",
                      prev,
                      " (offset ",
                      prev < 0 ? 0 : offset_data[prev],
                      ", count ",
                      prev < 0 ? 0 : count_data[prev],
                      ") overlaps run ",
                      i,
                      " (offset ",
                      offset_data[i],
                      ", count ",
                      count_data[i],
                      ")");
    prev = i;
  }
}

}  // namespace

int64_t check_read_async(const at::Tensor& src,
                         const std::optional<at::Tensor>& offset,
                         const std::optional<at::Tensor>& count,
                         const at::Tensor& index,
                         const at::Tensor& buffer,
                         const at::Tensor& dst) {
  constexpr auto op = "read_async";
  check_table(src, op, "src");
  check_table(buffer, op, "buffer");
  check_table(dst, op, "dst");
  check_cpu(src, op, "src");
  check_cpu(buffer, op, "buffer");
  check_like_src(buffer, src, op, "buffer");
  check_like_src(dst, src, op, "dst");
  TORCH_CHECK_VALUE(offset.has_value() == count.has_value(),
                    "read_async: 'offset' and 'count' must be given together");
  if (offset.has_value()) {
    check_index(*offset, op, "offset");
    check_index(*count, op, "count");
  }
  check_index(index, op, "index");
  // Reads must not write into what they read. 'buffer' may be 'dst' itself
  // (the gather then lands in place), but not overlap it partially.
  check_no_alias(src, buffer, op, "src", "buffer");
  check_no_alias(src, dst, op, "src", "dst");
  if (buffer.const_data_ptr() != dst.const_data_ptr())
    check_no_alias(buffer, dst, op, "buffer", "dst");
  for (const auto* out : {&buffer, &dst}) {
    const auto* out_name = out == &buffer ? "buffer" : "dst";
    if (offset.has_value()) {
      check_no_alias(*offset, *out, op, "offset", out_name);
      check_no_alias(*count, *out, op, "count", out_name);
    }
    check_no_alias(index, *out, op, "index", out_name);
  }

  const auto num_rows = src.size(0);
  int64_t n = 0;
  if (offset.has_value())
    n = check_runs(*offset, *count, num_rows, op, "src");
  const auto* index_data = index.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i) {
    TORCH_CHECK_VALUE(0 <= index_data[i] && index_data[i] < num_rows,
                      "read_async: 'index' contains row ",
                      index_data[i],
                      " but 'src' has ",
                      num_rows,
                      " rows");
  }
  n += index.numel();

  TORCH_CHECK_VALUE(buffer.size(0) >= n,
                    "read_async: 'buffer' has ",
                    buffer.size(0),
                    " rows but this read needs ",
                    n,
                    "; create the AsyncIOPool with buffer_size >= ",
                    n);
  TORCH_CHECK_VALUE(dst.size(0) >= n,
                    "read_async: 'dst' has ",
                    dst.size(0),
                    " rows but this read needs ",
                    n);
  return n;
}

void check_write_async(const at::Tensor& src,
                       const at::Tensor& offset,
                       const at::Tensor& count,
                       const at::Tensor& dst) {
  constexpr auto op = "write_async";
  check_table(src, op, "src");
  check_table(dst, op, "dst");
  check_cpu(dst, op, "dst");
  check_like_src(dst, src, op, "dst");
  check_index(offset, op, "offset");
  check_index(count, op, "count");
  check_no_alias(src, dst, op, "src", "dst");
  check_no_alias(offset, dst, op, "offset", "dst");
  check_no_alias(count, dst, op, "count", "dst");
  const auto total = check_runs(offset, count, dst.size(0), op, "dst");
  check_disjoint_runs(offset, count, op);
  TORCH_CHECK_VALUE(src.size(0) == total,
                    "write_async: 'src' has ",
                    src.size(0),
                    " rows but the runs in 'count' sum to ",
                    total);
}

void read_async(const at::Tensor& src,
                const std::optional<at::Tensor>& offset,
                const std::optional<at::Tensor>& count,
                const at::Tensor& index,
                const at::Tensor& buffer,
                const at::Tensor& dst) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_autoscale::read_async", "")
                       .typed<decltype(read_async)>();
  op.call(src, offset, count, index, buffer, dst);
}

void write_async(const at::Tensor& src,
                 const at::Tensor& offset,
                 const at::Tensor& count,
                 const at::Tensor& dst) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_autoscale::write_async", "")
                       .typed<decltype(write_async)>();
  op.call(src, offset, count, dst);
}

}  // namespace autoscale::ops
