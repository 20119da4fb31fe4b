// Local (windowed) correlation of PWC-Net / GOCor on the GPU: one thread per output element, NCHW, window
// k = (dy + r) * (2r + 1) + (dx + r), sums divided by C, zero outside the image (as local_correlation_cpu.cpp).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

namespace {

constexpr int kThreads = 256;

void check(const at::Tensor& a, const at::Tensor& b, const char* name) {
  TORCH_CHECK(a.is_cuda() && b.is_cuda(), name, ": tensors must be on a CUDA device");
  TORCH_CHECK(a.dim() == 4 && b.dim() == 4, name, ": inputs must be (B, C, H, W)");
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(2) && a.size(3) == b.size(3), name,
              ": batch and spatial sizes must agree");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), name, ": dtypes must agree");
}

// out[b, k, y, x] = sum_c first[b, c, y, x] * second[b, c, y + dy, x + dx] / C
template <typename T>
__global__ void forward_kernel(const T* __restrict__ f, const T* __restrict__ s, T* __restrict__ out, int64_t B,
                               int64_t C, int64_t H, int64_t W, int64_t r) {
  const int64_t D = 2 * r + 1, K = D * D, HW = H * W;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= B * K * HW) return;
  const int64_t x = index % W, y = (index / W) % H, k = (index / HW) % K, b = index / (HW * K);
  const int64_t y2 = y + k / D - r, x2 = x + k % D - r;
  T acc = T(0);
  if (y2 >= 0 && y2 < H && x2 >= 0 && x2 < W) {
    const T* fp = f + b * C * HW + y * W + x;
    const T* sp = s + b * C * HW + y2 * W + x2;
    for (int64_t c = 0; c < C; ++c) acc += fp[c * HW] * sp[c * HW];
  }
  out[index] = acc / T(C);
}

// sign = +1: out[b, c, y, x] = sum_k in[b, k, y, x] * s[b, c, y + dy, x + dx] / C   (adjoint w.r.t. first)
// sign = -1: out[b, c, y, x] = sum_k in[b, k, y - dy, x - dx] * s[b, c, y - dy, x - dx] / C   (grad w.r.t. second)
template <typename T>
__global__ void window_sum_kernel(const T* __restrict__ in, const T* __restrict__ s, T* __restrict__ out, int64_t B,
                                  int64_t C, int64_t H, int64_t W, int64_t r, int sign) {
  const int64_t D = 2 * r + 1, K = D * D, HW = H * W;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= B * C * HW) return;
  const int64_t x = index % W, y = (index / W) % H, c = (index / HW) % C, b = index / (HW * C);
  T acc = T(0);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t y2 = y + sign * (k / D - r), x2 = x + sign * (k % D - r);
    if (y2 < 0 || y2 >= H || x2 < 0 || x2 >= W) continue;
    const int64_t weight_pixel = sign > 0 ? y * W + x : y2 * W + x2;
    acc += in[(b * K + k) * HW + weight_pixel] * s[(b * C + c) * HW + y2 * W + x2];
  }
  out[index] = acc / T(C);
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

at::Tensor window_sum(const at::Tensor& input, const at::Tensor& second, int64_t radius, int sign, const char* name) {
  check(input, second, name);
  const int64_t D = 2 * radius + 1;
  TORCH_CHECK(input.size(1) == D * D, name, ": expected ", D * D, " window channels, got ", input.size(1));
  const auto in = input.contiguous(), s = second.contiguous();
  const int64_t B = s.size(0), C = s.size(1), H = s.size(2), W = s.size(3);
  auto out = at::empty_like(s);
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "local_correlation_window_sum", [&] {
    window_sum_kernel<scalar_t><<<blocks_for(out.numel()), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        in.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, radius, sign);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

at::Tensor local_correlation_forward_cuda(const at::Tensor& first, const at::Tensor& second, int64_t radius) {
  check(first, second, "local_correlation");
  TORCH_CHECK(first.size(1) == second.size(1), "local_correlation: channel sizes must agree");
  const auto f = first.contiguous(), s = second.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), D = 2 * radius + 1;
  auto out = at::empty({B, D * D, H, W}, f.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "local_correlation_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks_for(out.numel()), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        f.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, radius);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor local_correlation_transpose_cuda(const at::Tensor& input, const at::Tensor& second, int64_t radius) {
  return window_sum(input, second, radius, +1, "local_correlation_transpose");
}

at::Tensor local_correlation_grad_second_cuda(const at::Tensor& grad, const at::Tensor& first, int64_t radius) {
  return window_sum(grad, first, radius, -1, "local_correlation_grad_second");
}
