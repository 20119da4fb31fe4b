// 4-D max-pool on the GPU, one thread per pooled cell; the window index (i, j, k, l order, first maximum wins)
// is kept as uint8 for the backward pass and for relocalising matches.
#include "ops4d.h"
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

namespace {

struct Dims {
  int64_t I, J, K, L, I2, J2, K2, L2, k;
};

__device__ inline int64_t window_offset(const Dims& d, int64_t o, int64_t w) {
  const int64_t l2 = o % d.L2, k2 = (o / d.L2) % d.K2, j2 = (o / (d.L2 * d.K2)) % d.J2;
  const int64_t i2 = (o / (d.L2 * d.K2 * d.J2)) % d.I2, plane = o / (d.L2 * d.K2 * d.J2 * d.I2);
  const int64_t dl = w % d.k, dk = (w / d.k) % d.k, dj = (w / (d.k * d.k)) % d.k, di = w / (d.k * d.k * d.k);
  return (((plane * d.I + i2 * d.k + di) * d.J + j2 * d.k + dj) * d.K + k2 * d.k + dk) * d.L + l2 * d.k + dl;
}

template <typename T>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ out, uint8_t* __restrict__ index, Dims d,
                            int64_t total) {
  const int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (o >= total) return;
  const int64_t windows = d.k * d.k * d.k * d.k;
  T best = x[window_offset(d, o, 0)];
  int64_t arg = 0;
  for (int64_t w = 1; w < windows; ++w) {
    const T v = x[window_offset(d, o, w)];
    if (v > best) {
      best = v;
      arg = w;
    }
  }
  out[o] = best;
  index[o] = static_cast<uint8_t>(arg);
}

template <typename T>
__global__ void unpool_kernel(const T* __restrict__ grad, const uint8_t* __restrict__ index, T* __restrict__ gin,
                              Dims d, int64_t total) {
  const int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (o >= total) return;
  gin[window_offset(d, o, index[o])] = grad[o];
}

Dims dims_of(at::IntArrayRef shape, int64_t k) {
  return {shape[2], shape[3], shape[4], shape[5], shape[2] / k, shape[3] / k, shape[4] / k, shape[5] / k, k};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> maxpool4d_forward_cuda(const at::Tensor& input, int64_t k) {
  TORCH_CHECK(input.dim() == 6, "maxpool4d: input must be (B, C, I, J, K, L)");
  TORCH_CHECK(k >= 1 && k <= 4, "maxpool4d: window must be 1..4 (the index is stored as uint8)");
  const auto x = input.contiguous();
  const Dims d = dims_of(x.sizes(), k);
  TORCH_CHECK(d.I2 > 0 && d.J2 > 0 && d.K2 > 0 && d.L2 > 0, "maxpool4d: every spatial size must be >= the window");
  auto out = at::empty({x.size(0), x.size(1), d.I2, d.J2, d.K2, d.L2}, x.options());
  auto index = at::empty(out.sizes(), x.options().dtype(at::kByte));
  const int64_t total = out.numel();
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "maxpool4d_forward_cuda", [&] {
    pool_kernel<scalar_t><<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), index.data_ptr<uint8_t>(), d, total);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {out, index};
}

at::Tensor maxpool4d_backward_cuda(const at::Tensor& grad, const at::Tensor& index, at::IntArrayRef input_shape,
                                   int64_t k) {
  const auto g = grad.contiguous(), idx = index.contiguous();
  auto gin = at::zeros(input_shape, g.options());
  const Dims d = dims_of(input_shape, k);
  const int64_t total = g.numel();
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "maxpool4d_backward_cuda", [&] {
    unpool_kernel<scalar_t><<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        g.data_ptr<scalar_t>(), idx.data_ptr<uint8_t>(), gin.data_ptr<scalar_t>(), d, total);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return gin;
}
