// CORRLAB_SIMD_CLONES: compile a function for AVX-512, AVX2 and the baseline, picked at load time by the CPU (GCC on
// x86-64; elsewhere one baseline version).  Shared by the CPU kernels that use GCC vector extensions.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CORRLAB_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CORRLAB_SIMD_CLONES
#endif
