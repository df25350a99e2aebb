#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "ops/async_io.h"
#include "ops/cpu/async_io_kernel.h"
#include "utils/thread.h"

namespace autoscale::ops {

namespace {

// The caller's current stream on the device of `t`, which must not be the
// default stream (the legacy default stream serializes with all others).
c10::cuda::CUDAStream side_stream(const at::Tensor& t, const char* op) {
  const auto device = t.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream(device);
  TORCH_CHECK_VALUE(stream != c10::cuda::getDefaultCUDAStream(device),
                    op,
                    ": the current CUDA stream is the default stream; call it "
                    "under 'with torch.cuda.stream(s):' with a side stream "
                    "'s' so that the copy overlaps with compute");
  return stream;
}

// Returns at once; the worker thread gathers the rows into the pinned
// `buffer` and copies them to `dst` on the caller's current stream. The task
// holds references to every tensor and waits for its copy to finish, so the
// memory stays alive and `buffer` is free again once `synchronize()` returns.
void read_async_kernel(const at::Tensor& src,
                       const std::optional<at::Tensor>& offset,
                       const std::optional<at::Tensor>& count,
                       const at::Tensor& index,
                       const at::Tensor& buffer,
                       const at::Tensor& dst) {
  const auto n = check_read_async(src, offset, count, index, buffer, dst);
  TORCH_CHECK_VALUE(buffer.is_pinned(),
                    "read_async: 'buffer' must be in "
                    "pinned memory (allocate it with pin_memory=True)");
  const auto stream = side_stream(dst, "read_async");
  const auto bytes = n * dst.size(1) * static_cast<int64_t>(dst.element_size());
  if (bytes == 0)
    return;

  worker().enqueue([=] {
    c10::cuda::CUDAGuard device_guard(dst.device());
    gather_rows(src, offset, count, index, buffer);
    C10_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(),
                                   buffer.const_data_ptr(),
                                   bytes,
                                   cudaMemcpyHostToDevice,
                                   stream));
    C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  });
}

// Returns at once; the worker thread copies every run from `src` to the
// pinned host table `dst` on the caller's current stream and waits for the
// copies, so that later reads of `dst` (in call order) see the new rows.
void write_async_kernel(const at::Tensor& src,
                        const at::Tensor& offset,
                        const at::Tensor& count,
                        const at::Tensor& dst) {
  check_write_async(src, offset, count, dst);
  TORCH_CHECK_VALUE(dst.is_pinned(),
                    "write_async: 'dst' must be in pinned "
                    "memory (allocate it with pin_memory=True)");
  const auto stream = side_stream(src, "write_async");
  const auto row_bytes = src.size(1) * static_cast<int64_t>(src.element_size());
  if (src.size(0) == 0 || row_bytes == 0)
    return;

  worker().enqueue([=] {
    c10::cuda::CUDAGuard device_guard(src.device());
    const auto* offset_data = offset.const_data_ptr<int64_t>();
    const auto* count_data = count.const_data_ptr<int64_t>();
    const auto* src_data = static_cast<const char*>(src.const_data_ptr());
    auto* dst_data = static_cast<char*>(dst.data_ptr());
    for (int64_t i = 0, row = 0; i < offset.numel(); row += count_data[i++]) {
      if (count_data[i] == 0)
        continue;
      C10_CUDA_CHECK(cudaMemcpyAsync(dst_data + offset_data[i] * row_bytes,
                                     src_data + row * row_bytes,
                                     count_data[i] * row_bytes,
                                     cudaMemcpyDeviceToHost,
                                     stream));
    }
    C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_autoscale, CUDA, m) {
  m.impl("read_async", &read_async_kernel);
  m.impl("write_async", &write_async_kernel);
}

}  // namespace autoscale::ops
