#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace autoscale::ops {

// Gathers the rows `src[offset[i]:offset[i] + count[i]]` of every run, then
// the rows `src[index]`, into `buffer[:n]` and copies `buffer[:n]` to
// `dst[:n]`. Asynchronous when `dst` is on a CUDA device: it returns at once
// and `synchronize()` waits for the copy.
void read_async(const at::Tensor& src,
                const std::optional<at::Tensor>& offset,
                const std::optional<at::Tensor>& count,
                const at::Tensor& index,
                const at::Tensor& buffer,
                const at::Tensor& dst);

// Copies consecutive chunks of `src` into the runs
// `dst[offset[i]:offset[i] + count[i]]` of the host table `dst`.
// Asynchronous when `src` is on a CUDA device.
void write_async(const at::Tensor& src,
                 const at::Tensor& offset,
                 const at::Tensor& count,
                 const at::Tensor& dst);

// Checks the arguments of `read_async` and returns the number of rows it
// reads, `sum(count) + len(index)`; every kernel calls it first.
int64_t check_read_async(const at::Tensor& src,
                         const std::optional<at::Tensor>& offset,
                         const std::optional<at::Tensor>& count,
                         const at::Tensor& index,
                         const at::Tensor& buffer,
                         const at::Tensor& dst);

// Checks the arguments of `write_async`; every kernel calls it first.
void check_write_async(const at::Tensor& src,
                       const at::Tensor& offset,
                       const at::Tensor& count,
                       const at::Tensor& dst);

}  // namespace autoscale::ops
