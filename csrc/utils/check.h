#pragma once

#include <ATen/ATen.h>

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

}  // namespace autoscale
