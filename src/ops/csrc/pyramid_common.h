// Index helpers shared by the CPU and CUDA kernels of the DeepMatching pyramid (see
// src/ops/pyramid_reference.py for the definitions these follow).
#pragma once

#ifdef __CUDACC__
#define PYR_HD __host__ __device__ inline
#else
#define PYR_HD inline
#endif

// child index - parent index along one cell axis for the top/left (d = 0) or bottom/right (d = 1) child
PYR_HD int role_offset(int level, int d) {
    if (level == 1) return d - 1;
    const int gap = 1 << (level - 2);
    return d ? gap : -gap;
}

// map shift of a child: upper[p] gathers child[p - 1] (top/left child) or child[p + 1] (bottom/right)
PYR_HD int role_shift(int d) { return d ? 1 : -1; }

PYR_HD bool inside(int v, int lo, int hi) { return lo <= v && v < hi; }
