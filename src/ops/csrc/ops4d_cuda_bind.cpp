// Python bindings of the CUDA build of the 4-D ops (corrlab_ops4d_cuda).
#include <torch/extension.h>
#include "ops4d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("correlation4d_forward", &correlation4d_forward_cuda);
  m.def("correlation4d_backward", &correlation4d_backward_cuda);
  m.def("maxpool4d_forward", &maxpool4d_forward_cuda);
  m.def("maxpool4d_backward", &maxpool4d_backward_cuda);
  m.def("conv4d_forward", &conv4d_forward_cuda);
  m.def("conv4d_backward", &conv4d_backward_cuda);
}
