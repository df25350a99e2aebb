#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

#include "ops/csr_transpose.h"

namespace autoscale::ops {

namespace {

// A counting sort: one pass counts the entries of every column, a second
// scatters every entry to its column's next free slot. Scanning rows in order
// leaves the rows of every transposed row sorted, as `to_sparse_csr()` does,
// in O(nnz + num_rows + num_cols) instead of a sort over all entries.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose_kernel(
    const at::Tensor& rowptr,
    const at::Tensor& col,
    int64_t num_cols) {
  // Validates every row pointer and column before any memory is touched.
  check_csr_transpose(rowptr, col, num_cols);

  const auto num_rows = rowptr.numel() - 1;
  const auto num_entries = col.numel();
  const auto* rowptr_data = rowptr.const_data_ptr<int64_t>();
  const auto* col_data = col.const_data_ptr<int64_t>();

  auto out_rowptr = at::zeros({num_cols + 1}, rowptr.options());
  auto* out_rowptr_data = out_rowptr.data_ptr<int64_t>();
  for (int64_t e = 0; e < num_entries; ++e) {
    ++out_rowptr_data[col_data[e] + 1];
  }
  for (int64_t c = 0; c < num_cols; ++c)
    out_rowptr_data[c + 1] += out_rowptr_data[c];

  auto out_col = at::empty({num_entries}, col.options());
  auto perm = at::empty({num_entries}, col.options());
  auto* out_col_data = out_col.data_ptr<int64_t>();
  auto* perm_data = perm.data_ptr<int64_t>();
  std::vector<int64_t> next(out_rowptr_data, out_rowptr_data + num_cols);
  for (int64_t r = 0; r < num_rows; ++r) {
    for (auto e = rowptr_data[r]; e < rowptr_data[r + 1]; ++e) {
      const auto k = next[col_data[e]]++;
      out_col_data[k] = r;
      perm_data[k] = e;
    }
  }
  return std::make_tuple(out_rowptr, out_col, perm);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_autoscale, CPU, m) {
  m.impl("csr_transpose", &csr_transpose_kernel);
}

}  // namespace autoscale::ops
