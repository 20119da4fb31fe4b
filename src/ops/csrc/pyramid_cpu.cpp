// CPU (OpenMP) kernels of the DeepMatching pyramid; each equals its PyTorch reference in
// src/ops/pyramid_reference.py (same arithmetic in the same order, so the same rounding).
#include <torch/extension.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "pyramid_common.h"
#include "simd_clones.h"

namespace {

typedef float Float8 __attribute__((vector_size(32)));
typedef int32_t Int8 __attribute__((vector_size(32)));

// The float32 scans below take 8 lanes at a time (GCC vector extensions; 16-lane vectors compile to slow code for
// AVX2) with the scalar loops' comparisons in the scalar loops' order, so they give the same maxima and the same
// first-maximum indices on NaN-free maps.

// Window argmaxes of the pooled cells [1, lanes_end) of one pooled row, whose windows have all 3 columns 2 ux - 1 ..
// 2 ux + 1, over map rows [ya, yb): each cell visits its window in raster order with a strict '>' from -inf, as
// backtrack_map's scalar loop, 8 cells at a time; `arg` receives the flat pixel indices.  The rows are first split
// into their even and odd columns (`split`: 6 half rows of W / 2 + 1), so that every window column is a contiguous load.
CORRLAB_SIMD_CLONES void window_argmax_row(const float* layer, int W, int ya, int yb, int lanes_end, float* split,
                                           int32_t* arg) {
    const int half = W / 2 + 1;
    for (int y = ya; y < yb; y++) {
        const float* row = layer + int64_t(y) * W;
        float* even = split + 2 * (y - ya) * half;
        float* odd = even + half;
        for (int k = 0; k < W / 2; k++) {
            even[k] = row[2 * k];
            odd[k] = row[2 * k + 1];
        }
    }
    const Int8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int u0 = 1; u0 < lanes_end; u0 += 8) {
        Float8 best = Float8{} - std::numeric_limits<float>::infinity();
        Int8 where = 2 * lane + (ya * W + 2 * u0 - 1);
        for (int y = ya; y < yb; y++) {
            const float* even = split + 2 * (y - ya) * half;
            const float* odd = even + half;
            Float8 column[3];  // map columns 2 ux - 1, 2 ux, 2 ux + 1
            std::memcpy(&column[0], odd + u0 - 1, sizeof(Float8));
            std::memcpy(&column[1], even + u0, sizeof(Float8));
            std::memcpy(&column[2], odd + u0, sizeof(Float8));
            const Int8 first = 2 * lane + (y * W + 2 * u0 - 1);
            for (int dx = 0; dx < 3; dx++) {
                const Int8 greater = column[dx] > best;
                best = greater ? column[dx] : best;
                where = greater ? first + dx : where;
            }
        }
        std::memcpy(arg + u0, &where, sizeof(where));
    }
}

// The first index of the maximum of x[0, n < 2^31) (a strict '>' scan from x[0]): 8 lanes each keep their first
// maximum, the lanes are merged by value and then index, and the tail continues the scan.
CORRLAB_SIMD_CLONES int64_t first_argmax(const float* x, int64_t n) {
    Float8 best = Float8{} - std::numeric_limits<float>::infinity();
    Int8 where = {0, 1, 2, 3, 4, 5, 6, 7};
    const Int8 lane = where;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        Float8 v;
        std::memcpy(&v, x + i, sizeof(v));
        const Int8 greater = v > best;
        best = greater ? v : best;
        where = greater ? lane + int32_t(i) : where;
    }
    float top = i ? best[0] : x[0];
    int64_t arg = i ? where[0] : 0;
    for (int k = 1; k < 8 && i; k++)
        if (best[k] > top || (best[k] == top && where[k] < arg)) {
            top = best[k];
            arg = where[k];
        }
    for (; i < n; i++)
        if (x[i] > top) {
            top = x[i];
            arg = i;
        }
    return arg;
}

// Column maxima of `rows` consecutive map rows of width W (out[x] = max over the rows of row[x])
template <typename scalar_t>
void column_max(const scalar_t* first_row, int rows, int W, scalar_t* out) {
    std::copy(first_row, first_row + W, out);
    for (int y = 1; y < rows; y++) {
        const scalar_t* row = first_row + int64_t(y) * W;
        for (int x = 0; x < W; x++) out[x] = out[x] < row[x] ? row[x] : out[x];
    }
}

void check_cpu(const torch::Tensor& t, const char* name) {
    TORCH_CHECK(!t.is_cuda(), name, " must be a CPU tensor");
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// upper (B, UH1, UW1, PH, PW) += children taken from pooled rows [first_row, first_row + R)
template <typename scalar_t>
void aggregate_kernel(scalar_t* upper, const scalar_t* pooled, const scalar_t* weights, int B, int UH1, int UW1,
                      int H1, int W1, int R, int PH, int PW, int level, int first_row) {
    const int64_t map = int64_t(PH) * PW;
    const int64_t parents = int64_t(B) * UH1 * UW1;
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t p = 0; p < parents; p++) {
        const int uw = p % UW1, uh = (p / UW1) % UH1, b = p / (int64_t(UW1) * UH1);
        scalar_t* dst = upper + p * map;
        for (int role = 0; role < 4; role++) {
            const int dy = role / 2, dx = role % 2;
            const int ch = uh + role_offset(level, dy), cw = uw + role_offset(level, dx);
            if (!inside(ch, first_row, first_row + R) || ch >= H1 || !inside(cw, 0, W1)) continue;
            const scalar_t* src = pooled + ((int64_t(b) * R + (ch - first_row)) * W1 + cw) * map;
            const int sy = role_shift(dy), sx = role_shift(dx);
            const int y0 = dy ? 0 : 1, y1 = dy ? PH - 1 : PH;
            const int x0 = dx ? 0 : 1, x1 = dx ? PW - 1 : PW;
            if (weights) {
                const scalar_t w = weights[ch * W1 + cw];
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) dst[y * PW + x] += src[(y + sy) * PW + x + sx] * w;
            } else {
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) dst[y * PW + x] += src[(y + sy) * PW + x + sx];
            }
        }
    }
}

// grad_pooled (B, H1, W1, PH, PW) = transpose of aggregate_kernel applied to grad_upper
template <typename scalar_t>
void aggregate_transpose_kernel(scalar_t* grad, const scalar_t* grad_upper, const scalar_t* weights, int B, int UH1,
                                int UW1, int H1, int W1, int PH, int PW, int level) {
    const int64_t map = int64_t(PH) * PW;
    const int64_t children = int64_t(B) * H1 * W1;
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t c = 0; c < children; c++) {
        const int cw = c % W1, ch = (c / W1) % H1, b = c / (int64_t(W1) * H1);
        scalar_t* dst = grad + c * map;
        const scalar_t w = weights ? weights[ch * W1 + cw] : scalar_t(1);
        for (int role = 0; role < 4; role++) {
            const int dy = role / 2, dx = role % 2;
            const int uh = ch - role_offset(level, dy), uw = cw - role_offset(level, dx);
            if (!inside(uh, 0, UH1) || !inside(uw, 0, UW1)) continue;
            const scalar_t* src = grad_upper + ((int64_t(b) * UH1 + uh) * UW1 + uw) * map;
            const int sy = role_shift(dy), sx = role_shift(dx);
            const int y0 = dy ? 0 : 1, y1 = dy ? PH - 1 : PH;
            const int x0 = dx ? 0 : 1, x1 = dx ? PW - 1 : PW;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) dst[(y + sy) * PW + x + sx] += src[y * PW + x] * w;
        }
    }
}

// one child map `layer` (cell (b, ch, cw) of the child grid) gains its parents' best score at the argmax of
// every 3x3 stride-2 window (windows exclude the last row and column), in place; back (PH * PW) and gain
// (H2 * W2) are scratch buffers
template <typename scalar_t>
void backtrack_map(const scalar_t* upper, scalar_t* layer, scalar_t* back, scalar_t* gain, int b, int ch, int cw,
                   int UH1, int UW1, int H2, int W2, int PH, int PW, int level) {
    const int64_t map = int64_t(PH) * PW, lmap = int64_t(H2) * W2;
    std::fill(back, back + map, scalar_t(0));
    for (int role = 0; role < 4; role++) {
        const int dy = role / 2, dx = role % 2;
        const int uh = ch - role_offset(level, dy), uw = cw - role_offset(level, dx);
        if (!inside(uh, 0, UH1) || !inside(uw, 0, UW1)) continue;
        const scalar_t* src = upper + ((int64_t(b) * UH1 + uh) * UW1 + uw) * map;
        const int sy = role_shift(dy), sx = role_shift(dx);
        const int y0 = dy ? 0 : 1, y1 = dy ? PH - 1 : PH;
        const int x0 = dx ? 0 : 1, x1 = dx ? PW - 1 : PW;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                scalar_t& t = back[(y + sy) * PW + x + sx];
                t = std::max(t, src[y * PW + x]);
            }
    }
    std::fill(gain, gain + lmap, scalar_t(0));
    // in float32, pooled cells [1, lanes_end) go 8 at a time: their windows have all 3 columns (2 ux + 1 <= W2 - 2)
    const int lanes_end = std::is_same_v<scalar_t, float> ? 1 + 8 * (std::max((W2 - 3) / 2, 0) / 8) : 1;
    static thread_local std::vector<float> split;  // window_argmax_row's scratch and output, per thread
    static thread_local std::vector<int32_t> lane_arg;
    if (lanes_end > 1) {
        split.resize(6 * (W2 / 2 + 1));
        lane_arg.resize(PW);
    }
    for (int uy = 0; uy < PH; uy++) {
        const int ya = std::max(2 * uy - 1, 0), yb = std::min(2 * uy + 2, H2 - 1);
        if constexpr (std::is_same_v<scalar_t, float>) {
            if (lanes_end > 1) {
                window_argmax_row(layer, W2, ya, yb, lanes_end, split.data(), lane_arg.data());
                for (int ux = 1; ux < lanes_end; ux++)
                    gain[lane_arg[ux]] = std::max(gain[lane_arg[ux]], back[uy * PW + ux]);
            }
        }
        for (int ux = 0; ux < PW; ux = ux == 0 ? lanes_end : ux + 1) {
            const int xa = std::max(2 * ux - 1, 0), xb = std::min(2 * ux + 2, W2 - 1);
            scalar_t best = -std::numeric_limits<scalar_t>::infinity();
            int64_t arg = int64_t(ya) * W2 + xa;
            for (int y = ya; y < yb; y++)
                for (int x = xa; x < xb; x++)
                    if (layer[y * W2 + x] > best) {
                        best = layer[y * W2 + x];
                        arg = int64_t(y) * W2 + x;
                    }
            gain[arg] = std::max(gain[arg], back[uy * PW + ux]);
        }
    }
    for (int64_t i = 0; i < lmap; i++) layer[i] += gain[i];
}

// lower rows [first_row, first_row + R) of the child grid: backtrack_map on every map, in place
template <typename scalar_t>
void backtrack_kernel(const scalar_t* upper, scalar_t* lower, int B, int UH1, int UW1, int R, int W1, int H2, int W2,
                      int PH, int PW, int level, int first_row) {
    const int64_t lmap = int64_t(H2) * W2;
    const int64_t children = int64_t(B) * R * W1;
#pragma omp parallel num_threads(at::get_num_threads())
    {
        std::vector<scalar_t> back(int64_t(PH) * PW), gain(lmap);
#pragma omp for schedule(static)
        for (int64_t c = 0; c < children; c++) {
            const int cw = c % W1, ch = first_row + (c / W1) % R, b = c / (int64_t(W1) * R);
            backtrack_map(upper, lower + c * lmap, back.data(), gain.data(), b, ch, cw, UH1, UW1, H2, W2, PH, PW,
                          level);
        }
    }
}

// Level 0's top-down pass over maps [0, N) of a chunk, one map at a time while it is in cache: activation
// clamp(0)^power (torch's own kernels, so the same rounding as on the whole chunk), the top-down step from
// level 1 (when given), the map's best pixel, and every block x block tile's best (map, pixel) folded into
// values / indices (strictly greater wins: ties keep the first map, then the first pixel).  Each thread
// takes a contiguous run of maps; the runs are merged in order, so the result is the sequential one.
template <typename scalar_t>
void top_down_level0_kernel(scalar_t* volume, const scalar_t* upper, double power, int64_t N, int W1, int first_row,
                            int UH1, int UW1, int H2, int W2, int PH, int PW, int block, scalar_t* scores,
                            int64_t* pixels, scalar_t* values, int64_t* indices, int64_t index_offset) {
    const int64_t lmap = int64_t(H2) * W2;
    const int OH = H2 / block, OW = W2 / block, tiles = OH * OW;
    const int threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), N));
    std::vector<scalar_t> part_values(int64_t(threads) * tiles, -std::numeric_limits<scalar_t>::infinity());
    std::vector<int64_t> part_indices(int64_t(threads) * tiles, 0);
    const auto options = torch::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int64_t begin = N * t / threads, end = N * (t + 1) / threads;
        std::vector<scalar_t> back(int64_t(PH) * PW), gain(lmap), colmax(W2);
        scalar_t* best = part_values.data() + int64_t(t) * tiles;
        int64_t* arg = part_indices.data() + int64_t(t) * tiles;
        for (int64_t n = begin; n < end; n++) {
            scalar_t* layer = volume + n * lmap;
            torch::from_blob(layer, {lmap}, options).clamp_min_(0).pow_(power);
            if (upper) backtrack_map(upper, layer, back.data(), gain.data(), 0, first_row + int(n / W1), int(n % W1),
                                     UH1, UW1, H2, W2, PH, PW, 1);
            int64_t where = 0;
            if constexpr (std::is_same_v<scalar_t, float>) {
                where = first_argmax(layer, lmap);
            } else {
                for (int64_t i = 1; i < lmap; i++)
                    if (layer[i] > layer[where]) where = i;
            }
            scores[n] = layer[where];
            pixels[n] = where;
            for (int ty = 0; ty < OH; ty++) {
                column_max(layer + int64_t(ty) * block * W2, block, W2, colmax.data());
                for (int tx = 0; tx < OW; tx++) {
                    const int tile = ty * OW + tx;
                    const scalar_t* corner = layer + int64_t(ty) * block * W2 + tx * block;
                    scalar_t m = colmax[tx * block];
                    for (int x = 1; x < block; x++) m = std::max(m, colmax[tx * block + x]);
                    if (!(m > best[tile])) continue;
                    for (int i = 0; i < block * block; i++)
                        if (corner[(i / block) * W2 + i % block] == m) {  // the tile's first maximum
                            best[tile] = corner[(i / block) * W2 + i % block];
                            arg[tile] = index_offset + (n * H2 + ty * block + i / block) * W2 + tx * block + i % block;
                            break;
                        }
                }
            }
        }
    }
    for (int t = 0; t < threads; t++)
        for (int tile = 0; tile < tiles; tile++)
            if (part_values[int64_t(t) * tiles + tile] > values[tile]) {
                values[tile] = part_values[int64_t(t) * tiles + tile];
                indices[tile] = part_indices[int64_t(t) * tiles + tile];
            }
}

// max over all N maps and each block x block tile, first maximum in (n, y, x) order: a tile's max
// is computed first and searched for only when it beats the best so far
template <typename scalar_t>
void block_max_kernel(const scalar_t* volume, scalar_t* values, int64_t* indices, int64_t N, int H2, int W2, int block) {
    const int OH = H2 / block, OW = W2 / block;
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t tile = 0; tile < int64_t(OH) * OW; tile++) {
        const int ox = tile % OW, oy = tile / OW;
        scalar_t best = -std::numeric_limits<scalar_t>::infinity();
        int64_t arg = int64_t(oy) * block * W2 + ox * block;
        for (int64_t n = 0; n < N; n++) {
            const scalar_t* corner = volume + (n * H2 + oy * block) * W2 + ox * block;
            scalar_t top = corner[0];
            for (int y = 0; y < block; y++)
                for (int x = 0; x < block; x++) top = std::max(top, corner[y * W2 + x]);
            if (!(top > best)) continue;
            best = top;
            for (int i = 0; i < block * block; i++)
                if (corner[(i / block) * W2 + i % block] == top) {
                    arg = (n * H2 + oy * block + i / block) * W2 + ox * block + i % block;
                    break;
                }
        }
        values[tile] = best;
        indices[tile] = arg;
    }
}

// 3x3 stride-2 max-pool with padding 1 of one (H, W) map into (PH, PW); rowmax: W scratch values
template <typename scalar_t>
void max_pool_map(const scalar_t* map, scalar_t* out, scalar_t* rowmax, int H, int W) {
    const int PH = 1 + (H - 1) / 2, PW = 1 + (W - 1) / 2;
    for (int py = 0; py < PH; py++) {
        const int ya = std::max(2 * py - 1, 0), yb = std::min(2 * py + 1, H - 1);
        std::copy(map + ya * W, map + (ya + 1) * W, rowmax);
        for (int y = ya + 1; y <= yb; y++)
            for (int x = 0; x < W; x++) rowmax[x] = std::max(rowmax[x], map[y * W + x]);
        for (int px = 0; px < PW; px++) {
            const int xa = std::max(2 * px - 1, 0), xb = std::min(2 * px + 1, W - 1);
            scalar_t m = rowmax[xa];
            for (int x = xa + 1; x <= xb; x++) m = std::max(m, rowmax[x]);
            out[py * PW + px] = m;
        }
    }
}

// max_pool_map of every map; with power > 0, each pooled map is then activated clamp(0)^power by torch's
// own kernels while it is in cache (activating after the pool: the same values, the activation is monotone)
template <typename scalar_t>
void max_pool_kernel(const scalar_t* input, scalar_t* output, int64_t N, int H, int W, double power) {
    const int64_t pmap = int64_t(1 + (H - 1) / 2) * (1 + (W - 1) / 2);
    const auto options = torch::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
#pragma omp parallel num_threads(at::get_num_threads())
    {
        std::vector<scalar_t> rowmax(W);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            max_pool_map(input + n * H * W, output + n * pmap, rowmax.data(), H, W);
            if (power > 0) torch::from_blob(output + n * pmap, {pmap}, options).clamp_min_(0).pow_(power);
        }
    }
}

}  // namespace

void aggregate_(torch::Tensor upper, torch::Tensor pooled, c10::optional<torch::Tensor> weights, int64_t level,
                int64_t first_row) {
    check_cpu(upper, "upper");
    check_cpu(pooled, "pooled");
    TORCH_CHECK(upper.dim() == 5 && pooled.dim() == 5, "upper and pooled must be (B, H1, W1, H2, W2)");
    TORCH_CHECK(upper.scalar_type() == pooled.scalar_type(), "upper and pooled must have the same dtype");
    const int UH1 = upper.size(1), UW1 = upper.size(2);
    const int H1 = level == 1 ? UH1 - 1 : UH1, W1 = level == 1 ? UW1 - 1 : UW1;
    TORCH_CHECK(pooled.size(0) == upper.size(0) && pooled.size(2) == W1 && pooled.size(3) == upper.size(3) &&
                    pooled.size(4) == upper.size(4) && first_row + pooled.size(1) <= H1,
                "pooled does not fit upper at this level");
    if (weights) {
        check_cpu(*weights, "weights");
        TORCH_CHECK(weights->numel() == int64_t(H1) * W1 && weights->scalar_type() == upper.scalar_type(),
                    "weights must be (H1, W1) of the dtype of upper");
    }
    AT_DISPATCH_FLOATING_TYPES(upper.scalar_type(), "aggregate_", [&] {
        aggregate_kernel<scalar_t>(upper.data_ptr<scalar_t>(), pooled.data_ptr<scalar_t>(),
                                   weights ? weights->data_ptr<scalar_t>() : nullptr, upper.size(0), UH1, UW1, H1, W1,
                                   pooled.size(1), upper.size(3), upper.size(4), level, first_row);
    });
}

torch::Tensor aggregate_transpose(torch::Tensor grad_upper, c10::optional<torch::Tensor> weights, int64_t level) {
    check_cpu(grad_upper, "grad_upper");
    const int UH1 = grad_upper.size(1), UW1 = grad_upper.size(2);
    const int H1 = level == 1 ? UH1 - 1 : UH1, W1 = level == 1 ? UW1 - 1 : UW1;
    if (weights) check_cpu(*weights, "weights");
    auto grad = torch::zeros({grad_upper.size(0), H1, W1, grad_upper.size(3), grad_upper.size(4)}, grad_upper.options());
    AT_DISPATCH_FLOATING_TYPES(grad_upper.scalar_type(), "aggregate_transpose", [&] {
        aggregate_transpose_kernel<scalar_t>(grad.data_ptr<scalar_t>(), grad_upper.data_ptr<scalar_t>(),
                                             weights ? weights->data_ptr<scalar_t>() : nullptr, grad_upper.size(0), UH1,
                                             UW1, H1, W1, grad_upper.size(3), grad_upper.size(4), level);
    });
    return grad;
}

void backtrack_(torch::Tensor upper, torch::Tensor lower, int64_t level, int64_t first_row) {
    check_cpu(upper, "upper");
    check_cpu(lower, "lower");
    TORCH_CHECK(upper.dim() == 5 && lower.dim() == 5, "upper and lower must be (B, H1, W1, H2, W2)");
    TORCH_CHECK(upper.scalar_type() == lower.scalar_type(), "upper and lower must have the same dtype");
    const int UH1 = upper.size(1), UW1 = upper.size(2), PH = upper.size(3), PW = upper.size(4);
    const int H2 = lower.size(3), W2 = lower.size(4);
    TORCH_CHECK(H2 >= 2 && W2 >= 2 && PH == 1 + (H2 - 1) / 2 && PW == 1 + (W2 - 1) / 2,
                "upper maps must be the 3x3 stride-2 pooling of lower maps");
    TORCH_CHECK(int64_t(H2) * W2 < (int64_t(1) << 31), "maps of 2^31 pixels or more are not supported");
    AT_DISPATCH_FLOATING_TYPES(lower.scalar_type(), "backtrack_", [&] {
        backtrack_kernel<scalar_t>(upper.data_ptr<scalar_t>(), lower.data_ptr<scalar_t>(), lower.size(0), UH1, UW1,
                                   lower.size(1), lower.size(2), H2, W2, PH, PW, level, first_row);
    });
}

std::vector<torch::Tensor> block_max(torch::Tensor volume, int64_t block) {
    check_cpu(volume, "volume");
    TORCH_CHECK(volume.dim() == 3 && block >= 1, "volume must be (N, H2, W2) and block >= 1");
    const int H2 = volume.size(1), W2 = volume.size(2);
    auto values = torch::empty({H2 / block, W2 / block}, volume.options());
    auto indices = torch::empty({H2 / block, W2 / block}, volume.options().dtype(torch::kInt64));
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "block_max", [&] {
        block_max_kernel<scalar_t>(volume.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(),
                                   indices.data_ptr<int64_t>(), volume.size(0), H2, W2, block);
    });
    return {values, indices};
}

torch::Tensor max_pool(torch::Tensor volume, double power) {
    check_cpu(volume, "volume");
    TORCH_CHECK(volume.dim() >= 2, "volume must end with (H, W)");
    const int H = volume.size(-2), W = volume.size(-1);
    auto sizes = volume.sizes().vec();
    sizes[sizes.size() - 2] = 1 + (H - 1) / 2;
    sizes[sizes.size() - 1] = 1 + (W - 1) / 2;
    auto pooled = torch::empty(sizes, volume.options());
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "max_pool", [&] {
        max_pool_kernel<scalar_t>(volume.data_ptr<scalar_t>(), pooled.data_ptr<scalar_t>(),
                                  volume.numel() / (int64_t(H) * W), H, W, power);
    });
    return pooled;
}

std::vector<torch::Tensor> top_down_level0_(torch::Tensor volume, c10::optional<torch::Tensor> upper, double power,
                                            int64_t first_row, torch::Tensor values, torch::Tensor indices,
                                            int64_t block, int64_t index_offset) {
    check_cpu(volume, "volume");
    check_cpu(values, "values");
    check_cpu(indices, "indices");
    TORCH_CHECK(volume.dim() == 5 && volume.size(0) == 1, "volume must be (1, R, W1, H2, W2)");
    const int R = volume.size(1), W1 = volume.size(2), H2 = volume.size(3), W2 = volume.size(4);
    TORCH_CHECK(int64_t(H2) * W2 < (int64_t(1) << 31), "maps of 2^31 pixels or more are not supported");
    TORCH_CHECK(block >= 1 && values.numel() == int64_t(H2 / block) * (W2 / block) &&
                    values.scalar_type() == volume.scalar_type() && indices.numel() == values.numel() &&
                    indices.scalar_type() == torch::kInt64,
                "values / indices must hold one entry per block x block tile of the maps");
    int UH1 = 0, UW1 = 0, PH = 0, PW = 0;
    if (upper) {
        check_cpu(*upper, "upper");
        UH1 = upper->size(1), UW1 = upper->size(2), PH = upper->size(3), PW = upper->size(4);
        TORCH_CHECK(upper->dim() == 5 && upper->scalar_type() == volume.scalar_type() && UW1 == W1 + 1 && H2 >= 2 &&
                        W2 >= 2 && PH == 1 + (H2 - 1) / 2 && PW == 1 + (W2 - 1) / 2,
                    "upper must be level 1 of these level-0 maps");
    }
    const int64_t N = int64_t(R) * W1;
    auto scores = torch::empty({N}, volume.options());
    auto pixels = torch::empty({N}, volume.options().dtype(torch::kInt64));
    AT_DISPATCH_FLOATING_TYPES(volume.scalar_type(), "top_down_level0_", [&] {
        top_down_level0_kernel<scalar_t>(volume.data_ptr<scalar_t>(), upper ? upper->data_ptr<scalar_t>() : nullptr,
                                         power, N, W1, first_row, UH1, UW1, H2, W2, PH, PW, block,
                                         scores.data_ptr<scalar_t>(), pixels.data_ptr<int64_t>(),
                                         values.data_ptr<scalar_t>(), indices.data_ptr<int64_t>(), index_offset);
    });
    return {scores, pixels};
}

void merge_corres_(torch::Tensor accu, torch::Tensor corres, int64_t offset, torch::Tensor inv_trf, double max_dist,
                   int64_t step) {
    check_cpu(accu, "accu");
    check_cpu(corres, "corres");
    check_cpu(inv_trf, "inv_trf");
    TORCH_CHECK(accu.dim() == 3 && accu.size(2) == 6 && corres.dim() == 3 && corres.size(2) == 6,
                "accu and corres must be (H, W, 6)");
    TORCH_CHECK(accu.scalar_type() == torch::kFloat && corres.scalar_type() == torch::kFloat &&
                    inv_trf.scalar_type() == torch::kFloat && inv_trf.numel() >= 6,
                "merge_corres_ works on float32 tensors and a 2x3 inv_trf");
    const int OH = accu.size(0), OW = accu.size(1), IH = corres.size(0), IW = corres.size(1);
    const float* m = inv_trf.data_ptr<float>();
    const float* in = corres.data_ptr<float>();
    float* out = accu.data_ptr<float>();
    const float dmax2 = float(max_dist) * float(max_dist);
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t bin = 0; bin < int64_t(OH) * OW; bin++) {
        const int i = bin % OW, j = bin / OW;
        const float x = i * step + step / 2, y = j * step + step / 2;
        const float xr = x * m[0] + y * m[1] + m[2], yr = x * m[3] + y * m[4] + m[5];
        const int xb = int(0.5 + xr / 4), yb = int(0.5 + yr / 4);
        float best = dmax2;
        for (int v = yb - 1; v <= yb + 1; v++)
            for (int u = xb - 1; u <= xb + 1; u++) {
                if (!inside(v, 0, IH) || !inside(u, 0, IW)) continue;
                const float* cor = in + (int64_t(v) * IW + u) * 6;
                const float dx = cor[offset] - x, dy = cor[offset + 1] - y;
                best = std::min(best, dx * dx + dy * dy);
            }
        float* dst = out + bin * 6;
        for (int v = yb - 1; v <= yb + 1; v++)
            for (int u = xb - 1; u <= xb + 1; u++) {
                if (!inside(v, 0, IH) || !inside(u, 0, IW)) continue;
                const float* cor = in + (int64_t(v) * IW + u) * 6;
                const float dx = cor[offset] - x, dy = cor[offset + 1] - y;
                if (dx * dx + dy * dy <= 4 * best && cor[4] > dst[4]) std::copy(cor, cor + 6, dst);
            }
    }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("aggregate_", &aggregate_, "pyramid aggregation: upper += weighted shifted pooled children (in place)");
    m.def("aggregate_transpose", &aggregate_transpose, "gradient of the pyramid aggregation w.r.t. the pooled children");
    m.def("backtrack_", &backtrack_, "top-down DeepMatching step (in place on the lower level)");
    m.def("max_pool", &max_pool,
          "3x3 stride-2 max-pool (padding 1) of every map of a volume, then clamp(0)^power per map if power > 0");
    m.def("top_down_level0_", &top_down_level0_,
          "level 0's top-down pass fused per map: activation, top-down step, best pixel, per-tile best (in place)");
    m.def("block_max", &block_max, "max and argmax over all maps and block x block tiles (any size)");
    m.def("merge_corres_", &merge_corres_, "multi-scale merge of correspondences into an accumulator (in place)");
}
