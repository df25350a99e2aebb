#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace autoscale::ops {

// Transposes the CSR matrix (`rowptr`, `col`) with `num_cols` columns by a
// counting sort over its entries. Returns (out_rowptr, out_col, perm): the
// CSR pointer and column indices of the transpose (the original rows, in
// increasing order within every transposed row) and, for every entry of the
// transpose, its position in `col`, by which values are gathered.
std::tuple<at::Tensor, at::Tensor, at::Tensor> csr_transpose(
    const at::Tensor& rowptr,
    const at::Tensor& col,
    int64_t num_cols);

// Checks every argument of `csr_transpose`: the row pointer runs
// non-decreasing from 0 to `col.numel()` and every column lies in
// [0, num_cols). Every kernel calls it before touching memory.
void check_csr_transpose(const at::Tensor& rowptr,
                         const at::Tensor& col,
                         int64_t num_cols);

}  // namespace autoscale::ops
