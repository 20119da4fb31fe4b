// 4-D correlation on the GPU: a shared-memory tiled product out[b, p0, p1] = sum_c feat0[b, c, p0] * feat1[b, c, p1].
#include "ops4d.h"
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

namespace {

constexpr int kTile = 16;

template <typename T>
__global__ void correlate_kernel(const T* __restrict__ f0, const T* __restrict__ f1, T* __restrict__ out, int64_t C,
                                 int64_t N0, int64_t N1) {
  __shared__ T tile0[kTile][kTile];  // [c][p0]
  __shared__ T tile1[kTile][kTile];  // [c][p1]
  const int64_t b = blockIdx.z;
  const int64_t p0 = blockIdx.y * kTile + threadIdx.y, p1 = blockIdx.x * kTile + threadIdx.x;
  const T* a = f0 + b * C * N0;
  const T* c1 = f1 + b * C * N1;
  T acc = T(0);
  for (int64_t c0 = 0; c0 < C; c0 += kTile) {
    const int64_t ca = c0 + threadIdx.x, cb = c0 + threadIdx.y;
    const int64_t row0 = blockIdx.y * kTile + threadIdx.y;
    tile0[threadIdx.x][threadIdx.y] = (ca < C && row0 < N0) ? a[ca * N0 + row0] : T(0);
    tile1[threadIdx.y][threadIdx.x] = (cb < C && p1 < N1) ? c1[cb * N1 + p1] : T(0);
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += tile0[k][threadIdx.y] * tile1[k][threadIdx.x];
    __syncthreads();
  }
  if (p0 < N0 && p1 < N1) out[(b * N0 + p0) * N1 + p1] = acc;
}

}  // namespace

at::Tensor correlation4d_forward_cuda(const at::Tensor& feat0, const at::Tensor& feat1) {
  TORCH_CHECK(feat0.dim() == 4 && feat1.dim() == 4, "correlation4d: features must be (B, C, H, W)");
  TORCH_CHECK(feat0.size(0) == feat1.size(0) && feat0.size(1) == feat1.size(1),
              "correlation4d: batch and channel sizes must agree");
  const auto f0 = feat0.contiguous(), f1 = feat1.contiguous();
  const int64_t B = f0.size(0), C = f0.size(1), N0 = f0.size(2) * f0.size(3), N1 = f1.size(2) * f1.size(3);
  auto out = at::empty({B, 1, f0.size(2), f0.size(3), f1.size(2), f1.size(3)}, f0.options());
  const dim3 threads(kTile, kTile), blocks((N1 + kTile - 1) / kTile, (N0 + kTile - 1) / kTile, B);
  AT_DISPATCH_FLOATING_TYPES(f0.scalar_type(), "correlation4d_forward_cuda", [&] {
    correlate_kernel<scalar_t><<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        f0.data_ptr<scalar_t>(), f1.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), C, N0, N1);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// The gradients of a bilinear product are two batched matrix products (cuBLAS does them best).
std::tuple<at::Tensor, at::Tensor> correlation4d_backward_cuda(const at::Tensor& grad, const at::Tensor& feat0,
                                                              const at::Tensor& feat1) {
  const int64_t B = feat0.size(0), C = feat0.size(1);
  const auto g = grad.reshape({B, feat0.size(2) * feat0.size(3), feat1.size(2) * feat1.size(3)});
  const auto f0 = feat0.reshape({B, C, -1}), f1 = feat1.reshape({B, C, -1});
  return {at::bmm(f1, g.transpose(1, 2)).reshape(feat0.sizes()), at::bmm(f0, g).reshape(feat1.sizes())};
}
