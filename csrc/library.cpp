#include <Python.h>
#include <torch/library.h>
#include <torch/version.h>

#ifdef WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "utils/thread.h"

extern "C" {
// An empty `_C` module: importing it from Python loads this shared library,
// which runs the `TORCH_LIBRARY` registrations below. The ops themselves are
// reached through `torch.ops.torch_autoscale`, so no pybind11 is needed and
// the extension stays within Python's limited API.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",  // name
      NULL,  // documentation
      -1,    // per-interpreter state: none
      NULL,  // methods
  };
  return PyModule_Create(&module_def);
}
}

namespace autoscale {

// The CUDA version the extension was built with, e.g. 12080, or -1 if it was
// built without CUDA kernels.
int64_t cuda_version() {
#ifdef WITH_CUDA
  return CUDART_VERSION;
#else
  return -1;
#endif
}

// The torch release the extension was compiled against, e.g. "2.13.0"
// (torch_autoscale.typing refuses to load it into another minor release).
std::string torch_version() {
  return TORCH_VERSION;
}

// Waits for every task of the I/O worker thread and rethrows the first error
// one of them raised.
void synchronize() {
  worker().synchronize();
}

TORCH_LIBRARY(torch_autoscale, m) {
  m.def("cuda_version() -> int", &cuda_version);
  m.def("torch_version() -> str", &torch_version);
  m.def("synchronize() -> ()", &synchronize);
  m.def(
      "relabel_one_hop(Tensor rowptr, Tensor col, Tensor? value, Tensor n_id, "
      "bool bipartite) -> (Tensor, Tensor, Tensor?, Tensor)");
  m.def(
      "csr_transpose(Tensor rowptr, Tensor col, int num_cols) -> (Tensor, "
      "Tensor, Tensor)");
  m.def(
      "read_async(Tensor src, Tensor? offset, Tensor? count, Tensor index, "
      "Tensor(a!) buffer, Tensor(b!) dst) -> ()");
  m.def(
      "write_async(Tensor src, Tensor offset, Tensor count, Tensor(a!) dst) "
      "-> ()");
}

}  // namespace autoscale
