// 4-D max-pool on the CPU (window k, stride k, remainder dropped) keeping the flat window index of the maximum
// (order i, j, k, l with l fastest; the first maximum wins on ties).  Window 2 in float32 takes 16 outputs at a time
// (GCC vector extensions), with the same comparisons in the same order.
#include "ops4d.h"
#include "simd_clones.h"
#include <ATen/Parallel.h>
#include <cstring>
#include <type_traits>

namespace {

typedef float Float16 __attribute__((vector_size(64)));
typedef int32_t Int16 __attribute__((vector_size(64)));

// Window k = 2, float: outputs l2 in [l2_begin, l2_begin + 16) of one (i2, j2, k2) row, from the 8 input rows
// rows[(di * 2 + dj) * 2 + dk] (each read at 2 * l2 + dl).  The 16 window values are visited in the index order with
// a strict '>', so the first maximum wins exactly as in the scalar loop.
CORRLAB_SIMD_CLONES void pool2_block16(const float* const* rows, int64_t l2_begin, float* out, uint8_t* index) {
  Float16 best = {};
  Int16 arg = {};
  const Int16 even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const Int16 odd = even + 1;
  for (int r = 0; r < 8; ++r) {
    Float16 lo, hi;
    std::memcpy(&lo, rows[r] + 2 * l2_begin, sizeof(lo));
    std::memcpy(&hi, rows[r] + 2 * l2_begin + 16, sizeof(hi));
    for (int dl = 0; dl < 2; ++dl) {
      const Float16 v = __builtin_shuffle(lo, hi, dl == 0 ? even : odd);
      const int32_t w = 2 * r + dl;
      if (w == 0) {
        best = v;
        continue;
      }
      const Int16 greater = v > best;
      best = greater ? v : best;
      arg = greater ? Int16{} + w : arg;
    }
  }
  std::memcpy(out, &best, sizeof(best));
  for (int u = 0; u < 16; ++u) index[u] = static_cast<uint8_t>(arg[u]);
}

template <typename T>
void pool(const T* x, T* out, uint8_t* index, int64_t planes, int64_t I, int64_t J, int64_t K, int64_t L, int64_t k) {
  const int64_t I2 = I / k, J2 = J / k, K2 = K / k, L2 = L / k;
  at::parallel_for(0, planes * I2 * J2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t plane = t / (I2 * J2), i2 = (t / J2) % I2, j2 = t % J2;
      const T* src = x + plane * I * J * K * L;
      for (int64_t k2 = 0; k2 < K2; ++k2) {
        int64_t l2 = 0;
        if constexpr (std::is_same_v<T, float>) {
          if (k == 2) {
            const float* rows[8];
            for (int64_t r = 0; r < 8; ++r)
              rows[r] = src + (((i2 * 2 + r / 4) * J + j2 * 2 + r / 2 % 2) * K + k2 * 2 + r % 2) * L;
            const int64_t o = (t * K2 + k2) * L2;
            for (; l2 + 16 <= L2; l2 += 16) pool2_block16(rows, l2, out + o + l2, index + o + l2);
          }
        }
        for (; l2 < L2; ++l2) {
          T best = T(0);
          int64_t arg = -1, w = 0;
          for (int64_t di = 0; di < k; ++di)
            for (int64_t dj = 0; dj < k; ++dj)
              for (int64_t dk = 0; dk < k; ++dk)
                for (int64_t dl = 0; dl < k; ++dl, ++w) {
                  const T v = src[(((i2 * k + di) * J + j2 * k + dj) * K + k2 * k + dk) * L + l2 * k + dl];
                  if (arg < 0 || v > best) {
                    best = v;
                    arg = w;
                  }
                }
          const int64_t o = (t * K2 + k2) * L2 + l2;
          out[o] = best;
          index[o] = static_cast<uint8_t>(arg);
        }
      }
    }
  });
}

template <typename T>
void unpool(const T* grad, const uint8_t* index, T* gin, int64_t planes, int64_t I, int64_t J, int64_t K, int64_t L,
            int64_t k) {
  const int64_t I2 = I / k, J2 = J / k, K2 = K / k, L2 = L / k;
  at::parallel_for(0, planes * I2 * J2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t plane = t / (I2 * J2), i2 = (t / J2) % I2, j2 = t % J2;
      T* dst = gin + plane * I * J * K * L;
      for (int64_t k2 = 0; k2 < K2; ++k2) {
        for (int64_t l2 = 0; l2 < L2; ++l2) {
          const int64_t o = (t * K2 + k2) * L2 + l2;
          const int64_t w = index[o];
          const int64_t dl = w % k, dk = (w / k) % k, dj = (w / (k * k)) % k, di = w / (k * k * k);
          dst[(((i2 * k + di) * J + j2 * k + dj) * K + k2 * k + dk) * L + l2 * k + dl] = grad[o];
        }
      }
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> maxpool4d_forward_cpu(const at::Tensor& input, int64_t k) {
  TORCH_CHECK(input.dim() == 6, "maxpool4d: input must be (B, C, I, J, K, L)");
  TORCH_CHECK(k >= 1 && k <= 4, "maxpool4d: window must be 1..4 (the index is stored as uint8)");
  const auto x = input.contiguous();
  const int64_t I = x.size(2), J = x.size(3), K = x.size(4), L = x.size(5);
  TORCH_CHECK(I >= k && J >= k && K >= k && L >= k, "maxpool4d: every spatial size must be >= the window");
  auto out = at::empty({x.size(0), x.size(1), I / k, J / k, K / k, L / k}, x.options());
  auto index = at::empty(out.sizes(), x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "maxpool4d_forward_cpu", [&] {
    pool<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), index.data_ptr<uint8_t>(),
                   x.size(0) * x.size(1), I, J, K, L, k);
  });
  return {out, index};
}

at::Tensor maxpool4d_backward_cpu(const at::Tensor& grad, const at::Tensor& index, at::IntArrayRef input_shape,
                                  int64_t k) {
  const auto g = grad.contiguous(), idx = index.contiguous();
  auto gin = at::zeros(input_shape, g.options());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "maxpool4d_backward_cpu", [&] {
    unpool<scalar_t>(g.data_ptr<scalar_t>(), idx.data_ptr<uint8_t>(), gin.data_ptr<scalar_t>(),
                     input_shape[0] * input_shape[1], input_shape[2], input_shape[3], input_shape[4], input_shape[5],
                     k);
  });
  return gin;
}
