// Python bindings of the CUDA build of the local correlation (corrlab_local_correlation_cuda).
#include <torch/extension.h>

at::Tensor local_correlation_forward_cuda(const at::Tensor& first, const at::Tensor& second, int64_t radius);
at::Tensor local_correlation_transpose_cuda(const at::Tensor& input, const at::Tensor& second, int64_t radius);
at::Tensor local_correlation_grad_second_cuda(const at::Tensor& grad, const at::Tensor& first, int64_t radius);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &local_correlation_forward_cuda);
  m.def("transpose", &local_correlation_transpose_cuda);
  m.def("grad_second", &local_correlation_grad_second_cuda);
}
