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
  TORCH_CHECK_VALUE(num_cols < (int64_t{1} << 60),
                    "csr_transpose: 'num_cols' must be less than 2**60 (got ",
                    num_cols,
                    "); its row pointer would not fit in memory");
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
  // Non-decreasing from 0 to nnz: every row's entries lie within 'col'.
  for (int64_t r = 0; r < num_rows; ++r) {
    TORCH_CHECK_VALUE(rowptr_data[r] <= rowptr_data[r + 1],
                      "csr_transpose: 'rowptr' must be non-decreasing, but "
                      "row ",
                      r,
                      " spans [",
                      rowptr_data[r],
                      ", ",
                      rowptr_data[r + 1],
                      ")");
  }
  const auto* col_data = col.const_data_ptr<int64_t>();
  for (int64_t e = 0; e < col.numel(); ++e) {
    TORCH_CHECK_VALUE(0 <= col_data[e] && col_data[e] < num_cols,
                      "csr_transpose: 'col' contains column ",
                      col_data[e],
                      " but the matrix has ",
                      num_cols,
                      " columns");
  }
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
