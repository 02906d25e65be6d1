// GANDYN_CPU_HOT: build a hot loop twice, for AVX2 and for the baseline x86-64
// target; the loader picks the clone for the CPU at hand (GCC function
// multi-versioning). The extension is compiled for the baseline target, so without
// this the loops would use SSE2 only. Mark plain (non-template) functions only,
// and let them inline the shared arithmetic (an "arch=" clone could not inline it).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GANDYN_CPU_HOT __attribute__((target_clones("avx2", "default")))
#else
#define GANDYN_CPU_HOT
#endif
