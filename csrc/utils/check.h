#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace autoscale {

// Argument checks shared by the ops; `op` and `name` go into the message, as
// in the Python fallbacks (`torch_autoscale/ops.py`).

inline void check_cpu(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.is_cpu(),
                    op,
                    ": '",
                    name,
                    "' must be a CPU tensor (got device ",
                    t.device(),
                    ")");
}

// A one-dimensional, contiguous int64 CPU tensor of indices.
inline void check_index(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 1,
                    op,
                    ": '",
                    name,
                    "' must be one-dimensional (got ",
                    t.dim(),
                    " dimensions)");
  TORCH_CHECK_VALUE(t.scalar_type() == at::kLong,
                    op,
                    ": '",
                    name,
                    "' must be an int64 tensor");
  check_cpu(t, op, name);
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": '", name, "' must be contiguous");
}

// Whether the memory of two contiguous tensors overlaps (tensors on
// different devices, or empty ones, never do).
inline bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  if (a.device() != b.device())
    return false;
  const auto a_bytes = a.numel() * static_cast<int64_t>(a.element_size());
  const auto b_bytes = b.numel() * static_cast<int64_t>(b.element_size());
  if (a_bytes == 0 || b_bytes == 0)
    return false;
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.const_data_ptr());
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.const_data_ptr());
  return a0 < b0 + static_cast<std::uintptr_t>(b_bytes) &&
      b0 < a0 + static_cast<std::uintptr_t>(a_bytes);
}

// An argument that is read must not share memory with one that is written:
// the kernels copy in parallel and in place, so aliasing gives wrong rows.
inline void check_no_alias(const at::Tensor& a,
                           const at::Tensor& b,
                           const char* op,
                           const char* a_name,
                           const char* b_name) {
  TORCH_CHECK_VALUE(!overlaps(a, b),
                    op,
                    ": '",
                    a_name,
                    "' and '",
                    b_name,
                    "' share memory; pass a separate tensor (e.g., '",
                    a_name,
                    ".clone()')");
}

}  // namespace autoscale
