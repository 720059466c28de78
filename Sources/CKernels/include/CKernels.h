#ifndef CKERNELS_H
#define CKERNELS_H

// Small SSE2 intrinsics that Swift cannot emit: non-temporal stores, store fences and
// prefetches. All `static inline`, all within the x86-64 baseline (SSE2), so they
// inline into the Swift kernels and keep the build portable. Elsewhere they fall back
// to plain stores and no-ops.

#include <stdint.h>
#include <string.h>
#include "CKernelsDare.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#include <xmmintrin.h>
#define CK_HAS_SSE2 1
#else
#define CK_HAS_SSE2 0
#endif

/// Four 32-bit lanes; imported into Swift as SIMD4<UInt32>.
typedef uint32_t ck_u32x4 __attribute__((ext_vector_type(4)));

/// Whether `ck_stream_u32x4` really bypasses the caches.
static inline int ck_has_streaming_stores(void) { return CK_HAS_SSE2; }

/// A non-temporal 16-byte store; `destination` must be 16-byte aligned.
static inline void ck_stream_u32x4(void *destination, ck_u32x4 value) {
#if CK_HAS_SSE2
    _mm_stream_si128((__m128i *)destination, (__m128i)value);
#else
    memcpy(destination, &value, 16);
#endif
}

/// Orders the non-temporal stores before it ahead of every later store.
static inline void ck_store_fence(void) {
#if CK_HAS_SSE2
    _mm_sfence();
#endif
}

/// A prefetch into all cache levels (a hint: never faults).
static inline void ck_prefetch(const void *address) {
#if CK_HAS_SSE2
    _mm_prefetch((const char *)address, _MM_HINT_T0);
#else
    __builtin_prefetch(address);
#endif
}

/// A non-temporal prefetch (into the nearest cache, bypassing the others where the core can).
static inline void ck_prefetch_nta(const void *address) {
#if CK_HAS_SSE2
    _mm_prefetch((const char *)address, _MM_HINT_NTA);
#else
    __builtin_prefetch(address, 0, 0);
#endif
}

#endif
