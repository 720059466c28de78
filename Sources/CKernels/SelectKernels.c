// Selection passes (Kernels+TopK.swift, Kernels+HistogramSelect.swift) on AVX2 and
// AVX-512, selected at run time like the DARE kernels: the order keys of F32 or BF16
// values compared sixteen at a time. Integer results, the same on every path.

#include "CKernelsDare.h"
#include <string.h>

#pragma clang diagnostic ignored "-Wpsabi"

#define CK_INLINE static inline __attribute__((always_inline))

typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));
typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
typedef uint8_t u8x16 __attribute__((ext_vector_type(16)));
typedef _Bool bool16 __attribute__((ext_vector_type(16)));
typedef u16x16 u16x16_u __attribute__((aligned(1)));
typedef u32x16 u32x16_u __attribute__((aligned(1)));
typedef u8x16 u8x16_u __attribute__((aligned(1)));

#if defined(__x86_64__)

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define CK_ISA avx2
#include "SelectKernelBody.h"
#undef CK_ISA
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), apply_to = function)
#define CK_ISA avx512
#include "SelectKernelBody.h"
#undef CK_ISA
#pragma clang attribute pop

#else  // Not x86-64: ck_cpu_level() is 0 and nothing calls these.

void ck_key_low_counts_avx2(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint32_t *t) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; }
void ck_key_low_counts_avx512(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint32_t *t) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; }
void ck_mask_at_threshold_avx2(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint8_t *t, int64_t *a, int64_t *e) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; *a = 0; *e = 0; }
void ck_mask_at_threshold_avx512(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint8_t *t, int64_t *a, int64_t *e) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; *a = 0; *e = 0; }

#endif
