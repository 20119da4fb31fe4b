// CUDA kernels of the DeepMatching pyramid; each equals its PyTorch reference in
// src/ops/pyramid_reference.py (same arithmetic in the same order; built with --fmad=false).
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <limits>
#include <vector>

#include "pyramid_common.h"

namespace {

constexpr int THREADS = 256;

inline int blocks_for(int64_t n) { return int((n + THREADS - 1) / THREADS); }

void check_cuda(const torch::Tensor& t, const char* name) {
    TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// one thread per upper pixel: adds its (up to) 4 children in the order TL, TR, BL, BR
template <typename scalar_t>
__global__ void aggregate_kernel(scalar_t* upper, const scalar_t* pooled, const scalar_t* weights, int B, int UH1,
                                 int UW1, int H1, int W1, int R, int PH, int PW, int level, int first_row) {
    const int64_t total = int64_t(B) * UH1 * UW1 * PH * PW;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int x = idx % PW, y = (idx / PW) % PH;
    const int64_t p = idx / (int64_t(PW) * PH);
    const int uw = p % UW1, uh = (p / UW1) % UH1, b = p / (int64_t(UW1) * UH1);
    scalar_t acc = upper[idx];
    for (int role = 0; role < 4; role++) {
        const int dy = role / 2, dx = role % 2;
        const int ch = uh + role_offset(level, dy), cw = uw + role_offset(level, dx);
        if (!inside(ch, first_row, first_row + R) || ch >= H1 || !inside(cw, 0, W1)) continue;
        const int sy = y + role_shift(dy), sx = x + role_shift(dx);
        if (!inside(sy, 0, PH) || !inside(sx, 0, PW)) continue;
        const scalar_t v = pooled[((int64_t(b) * R + (ch - first_row)) * W1 + cw) * PH * PW + int64_t(sy) * PW + sx];
        acc += weights ? v * weights[ch * W1 + cw] : v;
    }
    upper[idx] = acc;
}

// one thread per pooled child pixel: gathers the gradient of its (up to) 4 parents
template <typename scalar_t>
__global__ void aggregate_transpose_kernel(scalar_t* grad, const scalar_t* grad_upper, const scalar_t* weights, int B,
                                           int UH1, int UW1, int H1, int W1, int PH, int PW, int level) {
    const int64_t total = int64_t(B) * H1 * W1 * PH * PW;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int x = idx % PW, y = (idx / PW) % PH;
    const int64_t c = idx / (int64_t(PW) * PH);
    const int cw = c % W1, ch = (c / W1) % H1, b = c / (int64_t(W1) * H1);
    const scalar_t w = weights ? weights[ch * W1 + cw] : scalar_t(1);
    scalar_t acc = 0;
    for (int role = 0; role < 4; role++) {
        const int dy = role / 2, dx = role % 2;
        const int uh = ch - role_offset(level, dy), uw = cw - role_offset(level, dx);
        if (!inside(uh, 0, UH1) || !inside(uw, 0, UW1)) continue;
        const int py = y - role_shift(dy), px = x - role_shift(dx);
        if (!inside(py, 0, PH) || !inside(px, 0, PW)) continue;
        acc += grad_upper[((int64_t(b) * UH1 + uh) * UW1 + uw) * PH * PW + int64_t(py) * PW + px] * w;
    }
    grad[idx] = acc;
}

// pass 1 of the top-down step: per window, the argmax (offset in its 3x3 window) and the parents' best score
template <typename scalar_t>
__global__ void backtrack_windows_kernel(const scalar_t* upper, const scalar_t* lower, scalar_t* back, int8_t* arg,
                                         int B, int UH1, int UW1, int R, int W1, int H2, int W2, int PH, int PW,
                                         int level, int first_row) {
    const int64_t total = int64_t(B) * R * W1 * PH * PW;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int ux = idx % PW, uy = (idx / PW) % PH;
    const int64_t c = idx / (int64_t(PW) * PH);
    const int cw = c % W1, ch = first_row + (c / W1) % R, b = c / (int64_t(W1) * R);
    scalar_t best_parent = 0;
    for (int role = 0; role < 4; role++) {
        const int dy = role / 2, dx = role % 2;
        const int uh = ch - role_offset(level, dy), uw = cw - role_offset(level, dx);
        if (!inside(uh, 0, UH1) || !inside(uw, 0, UW1)) continue;
        const int py = uy - role_shift(dy), px = ux - role_shift(dx);
        if (!inside(py, 0, PH) || !inside(px, 0, PW)) continue;
        const scalar_t v = upper[((int64_t(b) * UH1 + uh) * UW1 + uw) * PH * PW + int64_t(py) * PW + px];
        best_parent = v > best_parent ? v : best_parent;
    }
    back[idx] = best_parent;
    const scalar_t* layer = lower + c * int64_t(H2) * W2;
    const int ya = max(2 * uy - 1, 0), yb = min(2 * uy + 2, H2 - 1);
    const int xa = max(2 * ux - 1, 0), xb = min(2 * ux + 2, W2 - 1);
    scalar_t best = -std::numeric_limits<scalar_t>::infinity();
    int8_t where = (ya - (2 * uy - 1)) * 3 + (xa - (2 * ux - 1));
    for (int y = ya; y < yb; y++)
        for (int x = xa; x < xb; x++)
            if (layer[y * W2 + x] > best) {
                best = layer[y * W2 + x];
                where = (y - (2 * uy - 1)) * 3 + (x - (2 * ux - 1));
            }
    arg[idx] = where;
}

// pass 2: every lower pixel adds the best parents' score of the windows whose argmax it is
template <typename scalar_t>
__global__ void backtrack_gain_kernel(scalar_t* lower, const scalar_t* back, const int8_t* arg, int64_t children,
                                      int H2, int W2, int PH, int PW) {
    const int64_t total = children * H2 * W2;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int x = idx % W2, y = (idx / W2) % H2;
    const int64_t c = idx / (int64_t(W2) * H2);
    scalar_t gain = 0;
    for (int uy = max((y - 1 + 1) / 2, 0); uy <= min((y + 1) / 2, PH - 1); uy++)
        for (int ux = max((x - 1 + 1) / 2, 0); ux <= min((x + 1) / 2, PW - 1); ux++) {
            if (y < 2 * uy - 1 || y > 2 * uy + 1 || x < 2 * ux - 1 || x > 2 * ux + 1) continue;
            const int64_t w = (c * PH + uy) * PW + ux;
            if (arg[w] == (y - (2 * uy - 1)) * 3 + (x - (2 * ux - 1))) gain = back[w] > gain ? back[w] : gain;
        }
    lower[idx] += gain;
}

// one thread per output tile: scans all maps, first maximum in (n, y, x) order
template <typename scalar_t>
__global__ void block_max_kernel(const scalar_t* volume, scalar_t* values, int64_t* indices, int64_t N, int H2, int W2,
                                 int block) {
    const int OH = H2 / block, OW = W2 / block;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= int64_t(OH) * OW) return;
    const int ox = idx % OW, oy = idx / OW;
    scalar_t best = -std::numeric_limits<scalar_t>::infinity();
    int64_t where = int64_t(oy) * block * W2 + ox * block;
    for (int64_t n = 0; n < N; n++)
        for (int y = oy * block; y < (oy + 1) * block; y++)
            for (int x = ox * block; x < (ox + 1) * block; x++) {
                const int64_t i = (n * H2 + y) * W2 + x;
                if (volume[i] > best) {
                    best = volume[i];
                    where = i;
                }
            }
    values[idx] = best;
    indices[idx] = where;
}

// one thread per pooled pixel: 3x3 stride-2 max-pool with padding 1
template <typename scalar_t>
__global__ void max_pool_kernel(const scalar_t* input, scalar_t* output, int64_t N, int H, int W) {
    const int PH = 1 + (H - 1) / 2, PW = 1 + (W - 1) / 2;
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= N * PH * PW) return;
    const int px = idx % PW, py = (idx / PW) % PH;
    const scalar_t* map = input + (idx / (int64_t(PW) * PH)) * H * W;
    scalar_t m = -std::numeric_limits<scalar_t>::infinity();
    for (int y = max(2 * py - 1, 0); y <= min(2 * py + 1, H - 1); y++)
        for (int x = max(2 * px - 1, 0); x <= min(2 * px + 1, W - 1); x++) m = map[y * W + x] > m ? map[y * W + x] : m;
    output[idx] = m;
}

__global__ void merge_corres_kernel(float* accu, const float* corres, const float* m, int OH, int OW, int IH, int IW,
                                    int offset, float dmax2, int step) {
    const int64_t bin = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (bin >= int64_t(OH) * OW) return;
    const int i = bin % OW, j = bin / OW;
    const float x = i * step + step / 2, y = j * step + step / 2;
    const float xr = x * m[0] + y * m[1] + m[2], yr = x * m[3] + y * m[4] + m[5];
    const int xb = int(0.5 + xr / 4), yb = int(0.5 + yr / 4);
    float best = dmax2;
    for (int v = yb - 1; v <= yb + 1; v++)
        for (int u = xb - 1; u <= xb + 1; u++) {
            if (!inside(v, 0, IH) || !inside(u, 0, IW)) continue;
            const float* cor = corres + (int64_t(v) * IW + u) * 6;
            const float dx = cor[offset] - x, dy = cor[offset + 1] - y;
            best = fminf(best, dx * dx + dy * dy);
        }
    float* dst = accu + bin * 6;
    for (int v = yb - 1; v <= yb + 1; v++)
        for (int u = xb - 1; u <= xb + 1; u++) {
            if (!inside(v, 0, IH) || !inside(u, 0, IW)) continue;
            const float* cor = corres + (int64_t(v) * IW + u) * 6;
            const float dx = cor[offset] - x, dy = cor[offset + 1] - y;
            if (dx * dx + dy * dy <= 4 * best && cor[4] > dst[4])
                for (int k = 0; k < 6; k++) dst[k] = cor[k];
        }
}

}  // namespace

void aggregate_(torch::Tensor upper, torch::Tensor pooled, c10::optional<torch::Tensor> weights, int64_t level,
                int64_t first_row) {
    check_cuda(upper, "upper");
    check_cuda(pooled, "pooled");
    if (weights) check_cuda(*weights, "weights");
    const int UH1 = upper.size(1), UW1 = upper.size(2);
    const int H1 = level == 1 ? UH1 - 1 : UH1, W1 = level == 1 ? UW1 - 1 : UW1;
    TORCH_CHECK(pooled.size(2) == W1 && first_row + pooled.size(1) <= H1, "pooled does not fit upper at this level");
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(upper.scalar_type(), "aggregate_", [&] {
        aggregate_kernel<scalar_t><<<blocks_for(upper.numel()), THREADS, 0, stream>>>(
            upper.data_ptr<scalar_t>(), pooled.data_ptr<scalar_t>(), weights ? weights->data_ptr<scalar_t>() : nullptr,
            upper.size(0), UH1, UW1, H1, W1, pooled.size(1), upper.size(3), upper.size(4), level, first_row);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

torch::Tensor aggregate_transpose(torch::Tensor grad_upper, c10::optional<torch::Tensor> weights, int64_t level) {
    check_cuda(grad_upper, "grad_upper");
    if (weights) check_cuda(*weights, "weights");
    const int UH1 = grad_upper.size(1), UW1 = grad_upper.size(2);
    const int H1 = level == 1 ? UH1 - 1 : UH1, W1 = level == 1 ? UW1 - 1 : UW1;
    auto grad = torch::empty({grad_upper.size(0), H1, W1, grad_upper.size(3), grad_upper.size(4)}, grad_upper.options());
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(grad_upper.scalar_type(), "aggregate_transpose", [&] {
        aggregate_transpose_kernel<scalar_t><<<blocks_for(grad.numel()), THREADS, 0, stream>>>(
            grad.data_ptr<scalar_t>(), grad_upper.data_ptr<scalar_t>(),
            weights ? weights->data_ptr<scalar_t>() : nullptr, grad_upper.size(0), UH1, UW1, H1, W1,
            grad_upper.size(3), grad_upper.size(4), level);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return grad;
}

void backtrack_(torch::Tensor upper, torch::Tensor lower, int64_t level, int64_t first_row) {
    check_cuda(upper, "upper");
    check_cuda(lower, "lower");
    const int UH1 = upper.size(1), UW1 = upper.size(2), PH = upper.size(3), PW = upper.size(4);
    const int H2 = lower.size(3), W2 = lower.size(4);
    TORCH_CHECK(H2 >= 2 && W2 >= 2 && PH == 1 + (H2 - 1) / 2 && PW == 1 + (W2 - 1) / 2,
                "upper maps must be the 3x3 stride-2 pooling of lower maps");
    const int64_t children = lower.size(0) * lower.size(1) * lower.size(2);
    auto back = torch::empty({children, PH, PW}, lower.options());
    auto arg = torch::empty({children, PH, PW}, lower.options().dtype(torch::kInt8));
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(lower.scalar_type(), "backtrack_", [&] {
        backtrack_windows_kernel<scalar_t><<<blocks_for(back.numel()), THREADS, 0, stream>>>(
            upper.data_ptr<scalar_t>(), lower.data_ptr<scalar_t>(), back.data_ptr<scalar_t>(), arg.data_ptr<int8_t>(),
            lower.size(0), UH1, UW1, lower.size(1), lower.size(2), H2, W2, PH, PW, level, first_row);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        backtrack_gain_kernel<scalar_t><<<blocks_for(lower.numel()), THREADS, 0, stream>>>(
            lower.data_ptr<scalar_t>(), back.data_ptr<scalar_t>(), arg.data_ptr<int8_t>(), children, H2, W2, PH, PW);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
}

std::vector<torch::Tensor> block_max(torch::Tensor volume, int64_t block) {
    check_cuda(volume, "volume");
    TORCH_CHECK(volume.dim() == 3 && block >= 1, "volume must be (N, H2, W2) and block >= 1");
    const int H2 = volume.size(1), W2 = volume.size(2);
    auto values = torch::empty({H2 / block, W2 / block}, volume.options());
    auto indices = torch::empty({H2 / block, W2 / block}, volume.options().dtype(torch::kInt64));
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(volume.scalar_type(), "block_max", [&] {
        block_max_kernel<scalar_t><<<blocks_for(values.numel()), THREADS, 0, stream>>>(
            volume.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), indices.data_ptr<int64_t>(), volume.size(0), H2,
            W2, block);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {values, indices};
}

torch::Tensor max_pool(torch::Tensor volume) {
    check_cuda(volume, "volume");
    const int H = volume.size(-2), W = volume.size(-1);
    auto sizes = volume.sizes().vec();
    sizes[sizes.size() - 2] = 1 + (H - 1) / 2;
    sizes[sizes.size() - 1] = 1 + (W - 1) / 2;
    auto pooled = torch::empty(sizes, volume.options());
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(volume.scalar_type(), "max_pool", [&] {
        max_pool_kernel<scalar_t><<<blocks_for(pooled.numel()), THREADS, 0, stream>>>(
            volume.data_ptr<scalar_t>(), pooled.data_ptr<scalar_t>(), volume.numel() / (int64_t(H) * W), H, W);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return pooled;
}

void merge_corres_(torch::Tensor accu, torch::Tensor corres, int64_t offset, torch::Tensor inv_trf, double max_dist,
                   int64_t step) {
    check_cuda(accu, "accu");
    check_cuda(corres, "corres");
    check_cuda(inv_trf, "inv_trf");
    TORCH_CHECK(accu.scalar_type() == torch::kFloat && corres.scalar_type() == torch::kFloat &&
                    inv_trf.scalar_type() == torch::kFloat,
                "merge_corres_ works on float32 tensors");
    const float dmax2 = float(max_dist) * float(max_dist);
    auto stream = c10::cuda::getCurrentCUDAStream();
    merge_corres_kernel<<<blocks_for(accu.size(0) * accu.size(1)), THREADS, 0, stream>>>(
        accu.data_ptr<float>(), corres.data_ptr<float>(), inv_trf.data_ptr<float>(), accu.size(0), accu.size(1),
        corres.size(0), corres.size(1), offset, dmax2, step);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("aggregate_", &aggregate_, "pyramid aggregation: upper += weighted shifted pooled children (in place)");
    m.def("aggregate_transpose", &aggregate_transpose, "gradient of the pyramid aggregation w.r.t. the pooled children");
    m.def("backtrack_", &backtrack_, "top-down DeepMatching step (in place on the lower level)");
    m.def("max_pool", &max_pool, "3x3 stride-2 max-pool (padding 1) of every map of a volume");
    m.def("block_max", &block_max, "max and argmax over all maps and block x block tiles (any size)");
    m.def("merge_corres_", &merge_corres_, "multi-scale merge of correspondences into an accumulator (in place)");
}
