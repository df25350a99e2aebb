#include "ops/csr_transpose.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include "utils/check.h"

namespace autoscale::ops {

void check_csr_transpose(const at::Tensor& rowptr,
                         const at::Tensor& col,
                         int64_t num_cols) {
  check_index(rowptr, "csr_transpose", "rowptr");
  check_index(col, "csr_transpose", "col");
  TORCH_CHECK_VALUE(num_cols >= 0,
                    "csr_transpose: 'num_cols' must be non-negative (got ",
                    num_cols,
                    ")");
  TORCH_CHECK_VALUE(rowptr.numel() >= 1,
                    "csr_transpose: 'rowptr' must have at least one entry");
  const auto* rowptr_data = rowptr.const_data_ptr<int64_t>();
  const auto num_rows = rowptr.numel() - 1;
  TORCH_CHECK_VALUE(rowptr_data[0] == 0 && rowptr_data[num_rows] == col.numel(),
                    "csr_transpose: 'rowptr' must run from 0 to the number "
                    "of entries in 'col' (",
                    col.numel(),
                    "), got ",
                    rowptr_data[0],
                    " to ",
                    rowptr_data[num_rows]);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose(
    const at::Tensor& rowptr,
    const at::Tensor& col,
    int64_t num_cols) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_autoscale::csr_transpose", "")
                       .typed<decltype(csr_transpose)>();
  return op.call(rowptr, col, num_cols);
}

}  // namespace autoscale::ops
