#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace autoscale::ops {

// Host-side row copies shared by the CPU kernels and the CUDA worker tasks.
// They work on bytes (a row is `size(1) * element_size()` bytes) and expect
// arguments that passed `check_read_async` / `check_write_async`.

// `out[:n] = cat([src[o:o + c] for o, c in zip(offset, count)] + [src[index]])`
void gather_rows(const at::Tensor& src,
                 const std::optional<at::Tensor>& offset,
                 const std::optional<at::Tensor>& count,
                 const at::Tensor& index,
                 const at::Tensor& out);

// `dst[o:o + c] = next c rows of src` for every run (o, c).
void scatter_rows(const at::Tensor& src,
                  const at::Tensor& offset,
                  const at::Tensor& count,
                  const at::Tensor& dst);

}  // namespace autoscale::ops
