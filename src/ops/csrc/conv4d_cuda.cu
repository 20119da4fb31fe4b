// Conv4d on the GPU ('same' zero padding, stride 1, odd kernel S): one thread per output element for the forward
// pass (and, with the flipped weight, for the input gradient); one block per weight element for its gradient.
#include "ops4d.h"
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

namespace {

struct Shape {
  int64_t B, Ci, Co, I, J, K, L, S;
};

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                               T* __restrict__ out, Shape s, int64_t total) {
  const int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (o >= total) return;
  const int64_t l = o % s.L, k = (o / s.L) % s.K, j = (o / (s.L * s.K)) % s.J, i = (o / (s.L * s.K * s.J)) % s.I;
  const int64_t co = (o / (s.L * s.K * s.J * s.I)) % s.Co, b = o / (s.L * s.K * s.J * s.I * s.Co);
  const int64_t P = s.S / 2;
  T acc = bias != nullptr ? bias[co] : T(0);
  for (int64_t ci = 0; ci < s.Ci; ++ci)
    for (int64_t a = 0; a < s.S; ++a) {
      const int64_t ii = i + a - P;
      if (ii < 0 || ii >= s.I) continue;
      for (int64_t c = 0; c < s.S; ++c) {
        const int64_t jj = j + c - P;
        if (jj < 0 || jj >= s.J) continue;
        for (int64_t e = 0; e < s.S; ++e) {
          const int64_t kk = k + e - P;
          if (kk < 0 || kk >= s.K) continue;
          const T* row = x + ((((b * s.Ci + ci) * s.I + ii) * s.J + jj) * s.K + kk) * s.L;
          const T* taps = w + ((((co * s.Ci + ci) * s.S + a) * s.S + c) * s.S + e) * s.S;
          for (int64_t f = 0; f < s.S; ++f) {
            const int64_t ll = l + f - P;
            if (ll >= 0 && ll < s.L) acc += __ldg(taps + f) * row[ll];
          }
        }
      }
    }
  out[o] = acc;
}

// grad_w[co, ci, a, c, e, f] = sum over output positions of g[b, co, p] * x[b, ci, p + (a, c, e, f) - P]
template <typename T>
__global__ void weight_gradient_kernel(const T* __restrict__ g, const T* __restrict__ x, T* __restrict__ gw, Shape s) {
  extern __shared__ unsigned char shared_bytes[];
  T* partial = reinterpret_cast<T*>(shared_bytes);
  const int64_t t = blockIdx.x, S = s.S, P = S / 2;
  const int64_t f = t % S, e = (t / S) % S, c = (t / (S * S)) % S, a = (t / (S * S * S)) % S;
  const int64_t ci = (t / (S * S * S * S)) % s.Ci, co = t / (S * S * S * S * s.Ci);
  const int64_t positions = s.B * s.I * s.J * s.K * s.L;
  T acc = T(0);
  for (int64_t p = threadIdx.x; p < positions; p += blockDim.x) {
    const int64_t l = p % s.L, k = (p / s.L) % s.K, j = (p / (s.L * s.K)) % s.J, i = (p / (s.L * s.K * s.J)) % s.I;
    const int64_t b = p / (s.L * s.K * s.J * s.I);
    const int64_t ii = i + a - P, jj = j + c - P, kk = k + e - P, ll = l + f - P;
    if (ii < 0 || ii >= s.I || jj < 0 || jj >= s.J || kk < 0 || kk >= s.K || ll < 0 || ll >= s.L) continue;
    acc += g[((((b * s.Co + co) * s.I + i) * s.J + j) * s.K + k) * s.L + l] *
           x[((((b * s.Ci + ci) * s.I + ii) * s.J + jj) * s.K + kk) * s.L + ll];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) gw[t] = partial[0];
}

void check(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 6, "conv4d: input must be (B, C, I, J, K, L)");
  TORCH_CHECK(w.dim() == 6 && w.size(1) == x.size(1), "conv4d: weight must be (Co, Ci, S, S, S, S) with Ci = input channels");
  const int64_t S = w.size(2);
  TORCH_CHECK(S % 2 == 1 && w.size(3) == S && w.size(4) == S && w.size(5) == S, "conv4d: the kernel must be odd and cubic in 4-D");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), "conv4d: input and weight dtypes differ");
}

Shape shape_of(const at::Tensor& x, const at::Tensor& w) {
  return {x.size(0), x.size(1), w.size(0), x.size(2), x.size(3), x.size(4), x.size(5), w.size(2)};
}

}  // namespace

at::Tensor conv4d_forward_cuda(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  check(input, weight);
  const auto x = input.contiguous(), w = weight.contiguous();
  const Shape s = shape_of(x, w);
  auto out = at::empty({s.B, s.Co, s.I, s.J, s.K, s.L}, x.options());
  const bool has_bias = bias.has_value() && bias->defined();
  const auto b = has_bias ? bias->to(x.scalar_type()).contiguous() : at::Tensor();
  const int64_t total = out.numel();
  const int threads = 256;
  const int64_t blocks = (total + threads - 1) / threads;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv4d_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), has_bias ? b.data_ptr<scalar_t>() : nullptr,
        out.data_ptr<scalar_t>(), s, total);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cuda(const at::Tensor& grad, const at::Tensor& input,
                                                                    const at::Tensor& weight, bool with_bias) {
  const auto g = grad.contiguous(), x = input.contiguous(), w = weight.contiguous();
  const Shape s = shape_of(x, w);
  auto grad_input = conv4d_forward_cuda(g, conv4d_input_gradient_weight(w), c10::nullopt);
  auto grad_weight = at::empty_like(w);
  const int threads = 256;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv4d_backward_cuda", [&] {
    weight_gradient_kernel<scalar_t><<<w.numel(), threads, threads * sizeof(scalar_t), c10::cuda::getCurrentCUDAStream()>>>(
        g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), grad_weight.data_ptr<scalar_t>(), s);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor grad_bias = with_bias ? g.sum({0, 2, 3, 4, 5}) : at::Tensor();
  return {grad_input, grad_weight, grad_bias};
}
