// 4-D correlation on the CPU: out[b, p0, p1] = <feat0[b, :, p0], feat1[b, :, p1]>, parallel over rows p0.
#include "ops4d.h"
#include <ATen/Parallel.h>
#include <algorithm>

namespace {

constexpr int64_t kColumnBlock = 1024;  // a block of output columns stays in L1/L2 while channels stream

template <typename T>
void correlate(const T* f0, const T* f1, T* out, int64_t B, int64_t C, int64_t N0, int64_t N1) {
  at::parallel_for(0, B * N0, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / N0, p0 = row % N0;
      T* dst = out + row * N1;
      std::fill(dst, dst + N1, T(0));
      for (int64_t start = 0; start < N1; start += kColumnBlock) {
        const int64_t stop = std::min(N1, start + kColumnBlock);
        for (int64_t c = 0; c < C; ++c) {
          const T a = f0[(b * C + c) * N0 + p0];
          const T* src = f1 + (b * C + c) * N1;
          for (int64_t p1 = start; p1 < stop; ++p1) dst[p1] += a * src[p1];
        }
      }
    }
  });
}

}  // namespace

at::Tensor correlation4d_forward_cpu(const at::Tensor& feat0, const at::Tensor& feat1) {
  TORCH_CHECK(feat0.dim() == 4 && feat1.dim() == 4, "correlation4d: features must be (B, C, H, W)");
  TORCH_CHECK(feat0.size(0) == feat1.size(0) && feat0.size(1) == feat1.size(1),
              "correlation4d: batch and channel sizes must agree");
  const auto f0 = feat0.contiguous(), f1 = feat1.contiguous();
  const int64_t B = f0.size(0), C = f0.size(1), H0 = f0.size(2), W0 = f0.size(3), H1 = f1.size(2), W1 = f1.size(3);
  auto out = at::empty({B, 1, H0, W0, H1, W1}, f0.options());
  AT_DISPATCH_FLOATING_TYPES(f0.scalar_type(), "correlation4d_forward_cpu", [&] {
    correlate<scalar_t>(f0.data_ptr<scalar_t>(), f1.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H0 * W0,
                        H1 * W1);
  });
  return out;
}

// The gradients of a bilinear product are two batched matrix products (BLAS does them best).
std::tuple<at::Tensor, at::Tensor> correlation4d_backward_cpu(const at::Tensor& grad, const at::Tensor& feat0,
                                                             const at::Tensor& feat1) {
  const int64_t B = feat0.size(0), C = feat0.size(1);
  const auto g = grad.reshape({B, feat0.size(2) * feat0.size(3), feat1.size(2) * feat1.size(3)});
  const auto f0 = feat0.reshape({B, C, -1}), f1 = feat1.reshape({B, C, -1});
  return {at::bmm(f1, g.transpose(1, 2)).reshape(feat0.sizes()), at::bmm(f0, g).reshape(feat1.sizes())};
}
