// Declarations of the 4-D correlation, 4-D max-pool and Conv4d kernels (CPU and CUDA builds).
#pragma once
#include <ATen/ATen.h>
#include <tuple>

// (B, C, H0, W0) x (B, C, H1, W1) -> (B, 1, H0, W0, H1, W1)
at::Tensor correlation4d_forward_cpu(const at::Tensor& feat0, const at::Tensor& feat1);
std::tuple<at::Tensor, at::Tensor> correlation4d_backward_cpu(const at::Tensor& grad, const at::Tensor& feat0,
                                                             const at::Tensor& feat1);

// (B, C, I, J, K, L) -> pooled (B, C, I/k, J/k, K/k, L/k) and the uint8 window index of the maximum
std::tuple<at::Tensor, at::Tensor> maxpool4d_forward_cpu(const at::Tensor& input, int64_t k);
at::Tensor maxpool4d_backward_cpu(const at::Tensor& grad, const at::Tensor& index, at::IntArrayRef input_shape,
                                  int64_t k);

// 'same' 4-D convolution, stride 1, odd kernel: (B, Ci, I, J, K, L) * (Co, Ci, S, S, S, S) -> (B, Co, I, J, K, L)
at::Tensor conv4d_forward_cpu(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cpu(const at::Tensor& grad, const at::Tensor& input,
                                                                   const at::Tensor& weight, bool with_bias);

at::Tensor correlation4d_forward_cuda(const at::Tensor& feat0, const at::Tensor& feat1);
std::tuple<at::Tensor, at::Tensor> correlation4d_backward_cuda(const at::Tensor& grad, const at::Tensor& feat0,
                                                              const at::Tensor& feat1);
std::tuple<at::Tensor, at::Tensor> maxpool4d_forward_cuda(const at::Tensor& input, int64_t k);
at::Tensor maxpool4d_backward_cuda(const at::Tensor& grad, const at::Tensor& index, at::IntArrayRef input_shape,
                                   int64_t k);
at::Tensor conv4d_forward_cuda(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cuda(const at::Tensor& grad, const at::Tensor& input,
                                                                    const at::Tensor& weight, bool with_bias);

// The kernel that computes the input gradient of a 'same' convolution is the forward kernel with the weight
// flipped in all four spatial dims and its channel axes swapped.
inline at::Tensor conv4d_input_gradient_weight(const at::Tensor& weight) {
  return weight.flip({2, 3, 4, 5}).transpose(0, 1).contiguous();
}
