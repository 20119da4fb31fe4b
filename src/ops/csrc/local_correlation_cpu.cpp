// Local (windowed) correlation of PWC-Net / GOCor on the CPU, and the two products its gradients need.
// Window k = (dy + r) * (2r + 1) + (dx + r) (dy-major, as the FlowNet2 / GOCor kernels), sums divided by C,
// zero outside the image. Computed on channels-last copies so that the channel loops are contiguous.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

namespace {

at::Tensor channels_last(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).contiguous(); }
at::Tensor channels_first(const at::Tensor& x) { return x.permute({0, 3, 1, 2}).contiguous(); }

// Rows per task: small problems run on one thread (a parallel region costs more than they do).
int64_t grain(int64_t W, int64_t C, int64_t K) { return std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, W * C * K)); }

void check(const at::Tensor& a, const at::Tensor& b, const char* name) {
  TORCH_CHECK(a.dim() == 4 && b.dim() == 4, name, ": inputs must be (B, C, H, W)");
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(2) && a.size(3) == b.size(3), name,
              ": batch and spatial sizes must agree");
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), name, ": dtypes must agree");
}

// sum_c a[c] * b[c] in 8 interleaved partial sums (the compiler vectorises them without reassociating anything)
template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
  constexpr int64_t L = 8;
  T part[L] = {};
  int64_t c = 0;
  for (; c + L <= n; c += L)
    for (int64_t j = 0; j < L; ++j) part[j] += a[c + j] * b[c + j];
  T acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) acc += a[c] * b[c];
  return acc;
}

// out[b, y, x, k] = sum_c first[b, y, x, c] * second[b, y + dy, x + dx, c] / C
template <typename T>
void forward_kernel(const T* f, const T* s, T* out, int64_t B, int64_t H, int64_t W, int64_t C, int64_t r) {
  const int64_t D = 2 * r + 1, K = D * D;
  at::parallel_for(0, B * H, grain(W, C, K), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H;
      for (int64_t x = 0; x < W; ++x) {
        const T* fp = f + ((b * H + y) * W + x) * C;
        T* op = out + ((b * H + y) * W + x) * K;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t y2 = y + k / D - r, x2 = x + k % D - r;
          const bool inside = y2 >= 0 && y2 < H && x2 >= 0 && x2 < W;
          op[k] = inside ? dot(fp, s + ((b * H + y2) * W + x2) * C, C) / T(C) : T(0);
        }
      }
    }
  });
}

// out[b, y, x, c] = sum_k input[b, y, x, k] * second[b, y + dy, x + dx, c] / C   (sign = +1)
// out[b, y, x, c] = sum_k input[b, y - dy, x - dx, k] * second[b, y - dy, x - dx, c] / C   (sign = -1)
template <typename T>
void window_sum_kernel(const T* in, const T* s, T* out, int64_t B, int64_t H, int64_t W, int64_t C, int64_t r,
                       int sign) {
  const int64_t D = 2 * r + 1, K = D * D;
  at::parallel_for(0, B * H, grain(W, C, K), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(C);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H;
      for (int64_t x = 0; x < W; ++x) {
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t k = 0; k < K; ++k) {
          const int64_t y2 = y + sign * (k / D - r), x2 = x + sign * (k % D - r);
          if (y2 < 0 || y2 >= H || x2 < 0 || x2 >= W) continue;
          const int64_t weight_pixel = sign > 0 ? (b * H + y) * W + x : (b * H + y2) * W + x2;
          const T weight = in[weight_pixel * K + k];
          const T* sp = s + ((b * H + y2) * W + x2) * C;
          for (int64_t c = 0; c < C; ++c) acc[c] += weight * sp[c];
        }
        T* op = out + ((b * H + y) * W + x) * C;
        for (int64_t c = 0; c < C; ++c) op[c] = acc[c] / T(C);
      }
    }
  });
}

at::Tensor window_sum(const at::Tensor& input, const at::Tensor& second, int64_t radius, int sign, const char* name) {
  check(input, second, name);
  const int64_t D = 2 * radius + 1;
  TORCH_CHECK(input.size(1) == D * D, name, ": expected ", D * D, " window channels, got ", input.size(1));
  const auto in = channels_last(input), s = channels_last(second);
  const int64_t B = s.size(0), H = s.size(1), W = s.size(2), C = s.size(3);
  auto out = at::empty({B, H, W, C}, s.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "local_correlation_window_sum", [&] {
    window_sum_kernel<scalar_t>(in.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, H, W, C,
                                radius, sign);
  });
  return channels_first(out);
}

}  // namespace

at::Tensor local_correlation_forward(const at::Tensor& first, const at::Tensor& second, int64_t radius) {
  check(first, second, "local_correlation");
  TORCH_CHECK(first.size(1) == second.size(1), "local_correlation: channel sizes must agree");
  const auto f = channels_last(first), s = channels_last(second);
  const int64_t B = f.size(0), H = f.size(1), W = f.size(2), C = f.size(3), D = 2 * radius + 1;
  auto out = at::empty({B, H, W, D * D}, f.options());
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "local_correlation_forward", [&] {
    forward_kernel<scalar_t>(f.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, H, W, C,
                             radius);
  });
  return channels_first(out);
}

at::Tensor local_correlation_transpose(const at::Tensor& input, const at::Tensor& second, int64_t radius) {
  return window_sum(input, second, radius, +1, "local_correlation_transpose");
}

at::Tensor local_correlation_grad_second(const at::Tensor& grad, const at::Tensor& first, int64_t radius) {
  return window_sum(grad, first, radius, -1, "local_correlation_grad_second");
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &local_correlation_forward);
  m.def("transpose", &local_correlation_transpose);
  m.def("grad_second", &local_correlation_grad_second);
}
