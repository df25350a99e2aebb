#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace autoscale::ops {

// Restricts the CSR graph (`rowptr`, `col`, `value`) to the rows of the nodes
// `n_id` and relabels every column to its position in `n_id`, appending the
// columns not in `n_id` (the 1-hop halo) to it in first-seen order.
// Returns (out_rowptr, out_col, out_value, out_n_id).
std::tuple<at::Tensor, at::Tensor, std::optional<at::Tensor>, at::Tensor>
relabel_one_hop(const at::Tensor& rowptr,
                const at::Tensor& col,
                const std::optional<at::Tensor>& value,
                const at::Tensor& n_id,
                bool bipartite);

// Checks the arguments of `relabel_one_hop`; every kernel calls it first.
void check_relabel_one_hop(const at::Tensor& rowptr,
                           const at::Tensor& col,
                           const std::optional<at::Tensor>& value,
                           const at::Tensor& n_id);

}  // namespace autoscale::ops
