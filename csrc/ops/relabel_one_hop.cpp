#include "ops/relabel_one_hop.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include "utils/check.h"

namespace autoscale::ops {

void check_relabel_one_hop(const at::Tensor& rowptr,
                           const at::Tensor& col,
                           const std::optional<at::Tensor>& value,
                           const at::Tensor& n_id) {
  check_index(rowptr, "relabel_one_hop", "rowptr");
  check_index(col, "relabel_one_hop", "col");
  check_index(n_id, "relabel_one_hop", "n_id");
  if (value.has_value()) {
    TORCH_CHECK_VALUE(value->is_cpu(),
                      "relabel_one_hop: 'value' must be a CPU tensor (got "
                      "device ",
                      value->device(),
                      ")");
    TORCH_CHECK_VALUE(value->dim() >= 1 && value->size(0) == col.numel(),
                      "relabel_one_hop: 'value' must hold one entry per edge "
                      "along its first dimension (",
                      col.numel(),
                      "), got shape ",
                      value->sizes());
  }
  TORCH_CHECK_VALUE(rowptr.numel() >= 1,
                    "relabel_one_hop: 'rowptr' must have at least one entry");
  const auto num_nodes = rowptr.numel() - 1;
  const auto first = rowptr.const_data_ptr<int64_t>()[0];
  TORCH_CHECK_VALUE(first == 0,
                    "relabel_one_hop: 'rowptr' must start at 0 (got ",
                    first,
                    ")");
  const auto last = rowptr.const_data_ptr<int64_t>()[num_nodes];
  TORCH_CHECK_VALUE(last == col.numel(),
                    "relabel_one_hop: 'rowptr' ends at ",
                    last,
                    " but 'col' has ",
                    col.numel(),
                    " entries");
  const auto* n_id_data = n_id.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < n_id.numel(); ++i) {
    TORCH_CHECK_VALUE(0 <= n_id_data[i] && n_id_data[i] < num_nodes,
                      "relabel_one_hop: 'n_id' contains node ",
                      n_id_data[i],
                      " but the graph has ",
                      num_nodes,
                      " nodes");
  }
}

std::tuple<at::Tensor, at::Tensor, std::optional<at::Tensor>, at::Tensor>
relabel_one_hop(const at::Tensor& rowptr,
                const at::Tensor& col,
                const std::optional<at::Tensor>& value,
                const at::Tensor& n_id,
                bool bipartite) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("torch_autoscale::relabel_one_hop", "")
          .typed<decltype(relabel_one_hop)>();
  return op.call(rowptr, col, value, n_id, bipartite);
}

}  // namespace autoscale::ops
