// Conv4d on the CPU ('same' zero padding, stride 1, odd kernel S): each task owns one output position (b, i, j)
// and accumulates 2-D 'same' convolutions of the S x S neighbouring input (K, L) planes into its Co output planes,
// which stay in cache.  For S = 3 the S^2 input values of a block of outputs are loaded once and applied to every
// output channel; each output still adds its terms in the same order (bitwise the same as the generic loop).
#include "ops4d.h"
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CORRLAB_FMA_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define CORRLAB_FMA_CLONES
#endif
#define CORRLAB_INLINE inline __attribute__((always_inline))

namespace {

struct Shape {
  int64_t B, Ci, Co, I, J, K, L, S;
};

// acc[q] += sum_{e, f} w[e, f] * padded[q + e * Lp + f] for q in [0, n): a 2-D 'same' convolution of a plane that
// was zero-padded to width Lp = L + 2P, computed over the flat padded layout so the loop is long and branch-free
// (the 2P pad columns of each output row are computed and discarded).  SC > 0 fixes S at compile time.
template <typename T, int SC>
CORRLAB_INLINE void add_flat_stencil(const T* padded, const T* w, T* acc, int64_t n, int64_t Lp, int64_t s) {
  const int64_t S = SC > 0 ? SC : s;
  if (SC > 0) {  // all S x S taps in one pass: one load/store of acc per S^2 multiply-adds
    for (int64_t q = 0; q < n; ++q) {
      T sum = T(0);
      for (int64_t e = 0; e < S; ++e)
        for (int64_t f = 0; f < S; ++f) sum += w[e * S + f] * padded[q + e * Lp + f];
      acc[q] += sum;
    }
    return;
  }
  for (int64_t e = 0; e < S; ++e) {
    const T* row = padded + e * Lp;
    const T* we = w + e * S;
    for (int64_t q = 0; q < n; ++q) {
      T sum = T(0);
      for (int64_t f = 0; f < S; ++f) sum += we[f] * row[q + f];
      acc[q] += sum;
    }
  }
}

// acc[co * n + q] += sum_{e, f} w[co * w_stride + e * 3 + f] * padded[q + e * Lp + f] for every co < Co: the 3 x 3
// stencil of add_flat_stencil<float, 3> for all output channels at once, the 9 inputs of a block of 16 outputs loaded
// once (GCC vector extensions: one AVX-512 register, two AVX2 ones).  Same operations in the same order per output.
typedef float Float16 __attribute__((vector_size(64)));

CORRLAB_INLINE Float16 load16(const float* p) {
  Float16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

CORRLAB_INLINE void add_flat_stencil3_all(const float* padded, const float* w, int64_t w_stride, float* acc, int64_t n,
                                          int64_t Lp, int64_t Co) {
  int64_t q0 = 0;
  for (; q0 + 16 <= n; q0 += 16) {
    Float16 in[9];
    for (int64_t e = 0; e < 3; ++e)
      for (int64_t f = 0; f < 3; ++f) in[e * 3 + f] = load16(padded + q0 + e * Lp + f);
    for (int64_t co = 0; co < Co; ++co) {
      const float* wc = w + co * w_stride;
      Float16 sum = {};
      for (int64_t t = 0; t < 9; ++t) sum += in[t] * wc[t];
      float* a = acc + co * n + q0;
      const Float16 total = load16(a) + sum;
      std::memcpy(a, &total, sizeof(total));
    }
  }
  for (int64_t co = 0; co < Co; ++co)
    add_flat_stencil<float, 3>(padded + q0, w + co * w_stride, acc + co * n + q0, n - q0, Lp, 3);
}

// Per-thread buffers of a forward task: Co accumulators of K x Lp and one zero-bordered input plane.
template <typename T>
struct Scratch {
  std::vector<T> acc, padded;
  Scratch(const Shape& s) {
    const int64_t P = s.S / 2, Lp = s.L + 2 * P;
    acc.assign(s.Co * s.K * Lp, T(0));
    padded.assign((s.K + 2 * P) * Lp + 2 * P, T(0));
  }
};

template <typename T, int SC>
CORRLAB_INLINE void forward_task(const T* x, const T* w, T* out, const Shape& s, int64_t t, Scratch<T>& scratch) {
  const int64_t P = s.S / 2, KL = s.K * s.L, S2 = s.S * s.S, Lp = s.L + 2 * P, n = s.K * Lp;
  const int64_t b = t / (s.I * s.J), i = (t / s.J) % s.I, j = t % s.J;
  T* acc = scratch.acc.data();
  T* padded = scratch.padded.data();
  std::fill(scratch.acc.begin(), scratch.acc.end(), T(0));
  for (int64_t a = 0; a < s.S; ++a) {
    const int64_t ii = i + a - P;
    if (ii < 0 || ii >= s.I) continue;
    for (int64_t c = 0; c < s.S; ++c) {
      const int64_t jj = j + c - P;
      if (jj < 0 || jj >= s.J) continue;
      for (int64_t ci = 0; ci < s.Ci; ++ci) {
        const T* plane = x + (((b * s.Ci + ci) * s.I + ii) * s.J + jj) * KL;
        for (int64_t kk = 0; kk < s.K; ++kk) std::copy(plane + kk * s.L, plane + (kk + 1) * s.L, padded + (kk + P) * Lp + P);
        if constexpr (SC == 3 && std::is_same_v<T, float>) {
          const T* taps = w + ((ci * s.S + a) * s.S + c) * S2;  // co = 0; the next co is Ci * S^4 further
          add_flat_stencil3_all(padded, taps, s.Ci * S2 * S2, acc, n, Lp, s.Co);
          continue;
        }
        for (int64_t co = 0; co < s.Co; ++co) {
          const T* taps = w + (((co * s.Ci + ci) * s.S + a) * s.S + c) * S2;
          add_flat_stencil<T, SC>(padded, taps, acc + co * n, n, Lp, s.S);
        }
      }
    }
  }
  for (int64_t co = 0; co < s.Co; ++co) {
    T* dst = out + (((b * s.Co + co) * s.I + i) * s.J + j) * KL;
    const T* src = acc + co * n;
    for (int64_t kk = 0; kk < s.K; ++kk)
      for (int64_t ll = 0; ll < s.L; ++ll) dst[kk * s.L + ll] += src[kk * Lp + ll];
  }
}

CORRLAB_FMA_CLONES void forward_task_float(const float* x, const float* w, float* out, const Shape& s, int64_t t,
                                           Scratch<float>& scratch) {
  if (s.S == 3) forward_task<float, 3>(x, w, out, s, t, scratch);
  else forward_task<float, 0>(x, w, out, s, t, scratch);
}

void forward_task_any(const float* x, const float* w, float* out, const Shape& s, int64_t t, Scratch<float>& scratch) {
  forward_task_float(x, w, out, s, t, scratch);
}
void forward_task_any(const double* x, const double* w, double* out, const Shape& s, int64_t t, Scratch<double>& scratch) {
  forward_task<double, 0>(x, w, out, s, t, scratch);
}

// grad_w[co, ci, a, c, e, f] = sum over (b, i, j, kk, ll) of g[b, co, i, j, kk, ll] * x[b, ci, i+a-P, j+c-P, kk+e-P, ll+f-P]
template <typename T>
void weight_gradient_task(const T* g, const T* x, T* gw, const Shape& s, int64_t t) {
  const int64_t P = s.S / 2, KL = s.K * s.L, S2 = s.S * s.S;
  const int64_t co = t / (s.Ci * S2), ci = (t / S2) % s.Ci, a = (t / s.S) % s.S, c = t % s.S;
  T* dst = gw + t * S2;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = 0; i < s.I; ++i) {
      const int64_t ii = i + a - P;
      if (ii < 0 || ii >= s.I) continue;
      for (int64_t j = 0; j < s.J; ++j) {
        const int64_t jj = j + c - P;
        if (jj < 0 || jj >= s.J) continue;
        const T* gp = g + (((b * s.Co + co) * s.I + i) * s.J + j) * KL;
        const T* xp = x + (((b * s.Ci + ci) * s.I + ii) * s.J + jj) * KL;
        for (int64_t e = 0; e < s.S; ++e)
          for (int64_t f = 0; f < s.S; ++f) {
            const int64_t k0 = std::max<int64_t>(0, P - e), k1 = std::min(s.K, s.K + P - e);
            const int64_t l0 = std::max<int64_t>(0, P - f), l1 = std::min(s.L, s.L + P - f);
            T acc = T(0);
            for (int64_t kk = k0; kk < k1; ++kk) {
              const T* gr = gp + kk * s.L;
              const T* xr = xp + (kk + e - P) * s.L + (f - P);
              for (int64_t ll = l0; ll < l1; ++ll) acc += gr[ll] * xr[ll];
            }
            dst[e * s.S + f] += acc;
          }
      }
    }
}

Shape shape_of(const at::Tensor& x, const at::Tensor& w) {
  return {x.size(0), x.size(1), w.size(0), x.size(2), x.size(3), x.size(4), x.size(5), w.size(2)};
}

void check(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 6, "conv4d: input must be (B, C, I, J, K, L)");
  TORCH_CHECK(w.dim() == 6 && w.size(1) == x.size(1), "conv4d: weight must be (Co, Ci, S, S, S, S) with Ci = input channels");
  const int64_t S = w.size(2);
  TORCH_CHECK(S % 2 == 1 && w.size(3) == S && w.size(4) == S && w.size(5) == S, "conv4d: the kernel must be odd and cubic in 4-D");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), "conv4d: input and weight dtypes differ");
}

}  // namespace

at::Tensor conv4d_forward_cpu(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  check(input, weight);
  const auto x = input.contiguous(), w = weight.contiguous();
  const Shape s = shape_of(x, w);
  auto out = at::zeros({s.B, s.Co, s.I, s.J, s.K, s.L}, x.options());
  if (bias.has_value() && bias->defined()) out += bias->to(x.scalar_type()).reshape({1, s.Co, 1, 1, 1, 1});
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv4d_forward_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, s.B * s.I * s.J, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> scratch(s);
      for (int64_t t = begin; t < end; ++t) forward_task_any(xp, wp, op, s, t, scratch);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cpu(const at::Tensor& grad, const at::Tensor& input,
                                                                   const at::Tensor& weight, bool with_bias) {
  const auto g = grad.contiguous(), x = input.contiguous(), w = weight.contiguous();
  const Shape s = shape_of(x, w);
  auto grad_input = conv4d_forward_cpu(g, conv4d_input_gradient_weight(w), c10::nullopt);
  auto grad_weight = at::zeros_like(w);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "conv4d_backward_cpu", [&] {
    const scalar_t* gp = g.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* gwp = grad_weight.data_ptr<scalar_t>();
    at::parallel_for(0, s.Co * s.Ci * s.S * s.S, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) weight_gradient_task<scalar_t>(gp, xp, gwp, s, t);
    });
  });
  at::Tensor grad_bias = with_bias ? g.sum({0, 2, 3, 4, 5}) : at::Tensor();
  return {grad_input, grad_weight, grad_bias};
}
