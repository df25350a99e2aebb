#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "ops/relabel_one_hop.h"

namespace autoscale::ops {

namespace {

// Where every node of a mini-batch and its halo sits in the extended `n_id`
// (-1 where absent). A table over all nodes is fastest while the graph is
// not much larger than the call's work; past `kDenseFactor` times it, a
// hash map keeps every call O(batch + edges) instead of O(num_nodes): a
// graph of 50M nodes runs thousands of small batches per epoch.
class PositionMap {
 public:
  static constexpr int64_t kDenseFactor = 32;

  PositionMap(int64_t num_nodes, int64_t work)
      : dense_(num_nodes <= kDenseFactor * std::max<int64_t>(work, 1)) {
    if (dense_)
      table_.assign(num_nodes, -1);
    else
      map_.reserve(work);
  }

  // Sets the position of `v` to `i` unless it has one; returns the one it
  // had (-1 if none).
  int64_t insert(int64_t v, int64_t i) {
    if (dense_) {
      const auto old = table_[v];
      if (old < 0)
        table_[v] = i;
      return old;
    }
    const auto [it, inserted] = map_.emplace(v, i);
    return inserted ? -1 : it->second;
  }

 private:
  bool dense_;
  std::vector<int64_t> table_;
  std::unordered_map<int64_t, int64_t> map_;
};

std::tuple<at::Tensor, at::Tensor, std::optional<at::Tensor>, at::Tensor>
relabel_one_hop_kernel(const at::Tensor& rowptr,
                       const at::Tensor& col,
                       const std::optional<at::Tensor>& value,
                       const at::Tensor& n_id,
                       bool bipartite) {
  check_relabel_one_hop(rowptr, col, value, n_id);

  const auto num_nodes = rowptr.numel() - 1;
  const auto num_edges = col.numel();
  const auto batch_size = n_id.numel();
  const auto* rowptr_data = rowptr.const_data_ptr<int64_t>();
  const auto* col_data = col.const_data_ptr<int64_t>();
  const auto* n_id_data = n_id.const_data_ptr<int64_t>();

  auto out_rowptr = at::empty({batch_size + 1}, rowptr.options());
  auto* out_rowptr_data = out_rowptr.data_ptr<int64_t>();
  out_rowptr_data[0] = 0;
  for (int64_t i = 0; i < batch_size; ++i) {
    const auto v = n_id_data[i];
    const auto start = rowptr_data[v], end = rowptr_data[v + 1];
    TORCH_CHECK_VALUE(0 <= start && start <= end && end <= num_edges,
                      "relabel_one_hop: 'rowptr' is not a valid CSR pointer: "
                      "row ",
                      v,
                      " spans [",
                      start,
                      ", ",
                      end,
                      ") of ",
                      num_edges,
                      " edges");
    out_rowptr_data[i + 1] = out_rowptr_data[i] + (end - start);
  }

  const auto num_out_edges = out_rowptr_data[batch_size];

  // Position of every node in the (extended) `n_id`, -1 where absent.
  PositionMap pos(num_nodes, batch_size + num_out_edges);
  for (int64_t i = 0; i < batch_size; ++i) {
    const auto v = n_id_data[i];
    TORCH_CHECK_VALUE(pos.insert(v, i) < 0,
                      "relabel_one_hop: 'n_id' contains node ",
                      v,
                      " more than once");
  }
  auto out_col = at::empty({num_out_edges}, col.options());
  auto* out_col_data = out_col.data_ptr<int64_t>();
  at::Tensor e_id;  // Kept edges' positions in `col`, to gather `value`.
  int64_t* e_id_data = nullptr;
  if (value.has_value()) {
    e_id = at::empty({num_out_edges}, col.options());
    e_id_data = e_id.data_ptr<int64_t>();
  }

  std::vector<int64_t> halo;
  for (int64_t i = 0, k = 0; i < batch_size; ++i) {
    const auto v = n_id_data[i];
    for (auto e = rowptr_data[v]; e < rowptr_data[v + 1]; ++e, ++k) {
      const auto w = col_data[e];
      TORCH_CHECK_VALUE(0 <= w && w < num_nodes,
                        "relabel_one_hop: 'col' contains node ",
                        w,
                        " but the graph has ",
                        num_nodes,
                        " nodes");
      const auto next = batch_size + static_cast<int64_t>(halo.size());
      const auto old = pos.insert(w, next);
      if (old < 0)
        halo.push_back(w);
      out_col_data[k] = old < 0 ? next : old;
      if (e_id_data != nullptr)
        e_id_data[k] = e;
    }
  }

  const auto num_halo = static_cast<int64_t>(halo.size());
  auto out_n_id = at::empty({batch_size + num_halo}, n_id.options());
  auto* out_n_id_data = out_n_id.data_ptr<int64_t>();
  std::copy(n_id_data, n_id_data + batch_size, out_n_id_data);
  std::copy(halo.begin(), halo.end(), out_n_id_data + batch_size);

  if (!bipartite) {  // Halo rows are empty: a square adjacency.
    out_rowptr = at::cat(
        {out_rowptr, at::full({num_halo}, num_out_edges, rowptr.options())});
  }

  std::optional<at::Tensor> out_value;
  if (value.has_value())
    out_value = value->index_select(0, e_id);

  return std::make_tuple(out_rowptr, out_col, out_value, out_n_id);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_autoscale, CPU, m) {
  m.impl("relabel_one_hop", &relabel_one_hop_kernel);
}

}  // namespace autoscale::ops
