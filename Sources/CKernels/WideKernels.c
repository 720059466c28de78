// The wide kernels on AVX2 and AVX-512, selected at run time: the fused DARE pass, the
// Philox stream and keep masks (DareKernelBody.h), and the selection passes over order
// keys (SelectKernelBody.h; integer results).
//
// Each kernel is written once over 16-lane vectors (clang vector extensions) in a body
// header, which is compiled twice below, each time with every function under a
// target attribute: clang turns the same operations into two 256-bit halves (AVX2) or one
// 512-bit register (AVX-512). Same integer stream, same f32 operations in the same order as the Swift
// kernels (Sources/LopperCore/Random), and no contraction into FMA: identical bits.

#include "CKernelsDare.h"
#include <string.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#pragma clang fp contract(off)
// The 16-lane helpers are always inlined into their kernel, so the vector calling
// convention the AVX2 copy would use for 512-bit arguments never exists.
#pragma clang diagnostic ignored "-Wpsabi"

#define CK_INLINE static inline __attribute__((always_inline))

typedef uint32_t u32x16 __attribute__((ext_vector_type(16)));
typedef int32_t i32x16 __attribute__((ext_vector_type(16)));
typedef int16_t i16x16 __attribute__((ext_vector_type(16)));
typedef uint64_t u64x16 __attribute__((ext_vector_type(16)));
typedef uint16_t u16x16 __attribute__((ext_vector_type(16)));
typedef uint8_t u8x16 __attribute__((ext_vector_type(16)));
typedef _Bool bool16 __attribute__((ext_vector_type(16)));
typedef float f32x16 __attribute__((ext_vector_type(16)));
typedef uint32_t u32x8 __attribute__((ext_vector_type(8)));
// Unaligned access to the same vectors.
typedef u16x16 u16x16_u __attribute__((aligned(1)));
typedef f32x16 f32x16_u __attribute__((aligned(1)));
typedef u32x8 u32x8_u __attribute__((aligned(1)));
typedef u32x16 u32x16_u __attribute__((aligned(1)));
typedef u8x16 u8x16_u __attribute__((aligned(1)));

/// The running sums of one block, in registers while its sixteen groups are made. A lane
/// counts at most 64 nonzero deltas a block: before in the low 16 bits, after in the high
/// (one register pair fewer on AVX2, whose sixteen registers the sums would otherwise fill).
typedef struct { f32x16 sum_before, squares_before, sum_after, squares_after, error; u32x16 nonzero; } ck_sums;

int ck_cpu_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) return 2;
    if (__builtin_cpu_supports("avx2")) return 1;
#endif
    return 0;
}

#if defined(__x86_64__)

#include <immintrin.h>

CK_INLINE uint32_t ck_median3(uint32_t a, uint32_t b, uint32_t c) {
    const uint32_t low = a < b ? a : b, high = a < b ? b : a;
    return c < low ? low : c > high ? high : c;
}

/// The key of ascending rank `rank` among `keys[0..<count]` by three counting passes
/// (11, 11 and 10 bits of the answer): linear whatever the keys, the wide select's last step.
static uint32_t ck_counting_select(const uint32_t *keys, int64_t count, int64_t rank) {
    static const int shifts[3] = {21, 10, 0}, widths[3] = {11, 11, 10};
    uint32_t prefix = 0, known = 0;
    int64_t counts[2048];
    for (int pass = 0; pass < 3; pass++) {
        const uint32_t digit_mask = (1u << widths[pass]) - 1;
        memset(counts, 0, sizeof counts);
        for (int64_t i = 0; i < count; i++) {
            if ((keys[i] & known) == prefix) counts[(keys[i] >> shifts[pass]) & digit_mask] += 1;
        }
        uint32_t digit = 0;
        while (rank >= counts[digit]) { rank -= counts[digit]; digit++; }
        prefix |= digit << shifts[pass];
        known |= digit_mask << shifts[pass];
    }
    return prefix;
}

/// For the AVX2 compress (SelectKernelBody.h): for each byte, the positions of its set bits, first.
static uint8_t ck_compress_order[256][8];
__attribute__((constructor)) static void ck_fill_compress_order(void) {
    for (int bits = 0; bits < 256; bits++) {
        int count = 0;
        for (int lane = 0; lane < 8; lane++) if (bits >> lane & 1) ck_compress_order[bits][count++] = (uint8_t)lane;
    }
}

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define CK_ISA avx2
#define CK_PHILOX_INTERLEAVE 0
#include "DareKernelBody.h"
#include "SelectKernelBody.h"
#undef CK_PHILOX_INTERLEAVE
#undef CK_ISA
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl"))), apply_to = function)
#define CK_ISA avx512
#define CK_PHILOX_INTERLEAVE 1
#define CK_COMPRESS_512 1
#include "DareKernelBody.h"
#include "SelectKernelBody.h"
#undef CK_COMPRESS_512
#undef CK_PHILOX_INTERLEAVE
#undef CK_ISA
#pragma clang attribute pop

#else  // Not x86-64: ck_cpu_level() is 0 and nothing calls these.

void ck_dare_bf16_avx2(const ck_dare_args *a, int64_t first, int64_t groups, uint8_t *redo) { (void)a; (void)first; memset(redo, 1, (size_t)groups); }
void ck_dare_bf16_avx512(const ck_dare_args *a, int64_t first, int64_t groups, uint8_t *redo) { (void)a; (void)first; memset(redo, 1, (size_t)groups); }
void ck_dare_f32_avx2(const ck_dare_args *a, int64_t first, int64_t groups, uint8_t *redo) { (void)a; (void)first; memset(redo, 1, (size_t)groups); }
void ck_dare_f32_avx512(const ck_dare_args *a, int64_t first, int64_t groups, uint8_t *redo) { (void)a; (void)first; memset(redo, 1, (size_t)groups); }
void ck_philox_words_avx2(uint64_t s, uint64_t h, int64_t f, int64_t g, uint32_t *t) { (void)s; (void)h; (void)f; (void)g; (void)t; }
void ck_philox_words_avx512(uint64_t s, uint64_t h, int64_t f, int64_t g, uint32_t *t) { (void)s; (void)h; (void)f; (void)g; (void)t; }
void ck_keep_mask_avx2(uint64_t s, uint64_t h, uint32_t hi, uint32_t lo, int64_t f, int64_t g, uint8_t *t, uint8_t *redo) { (void)s; (void)h; (void)hi; (void)lo; (void)f; (void)t; memset(redo, 1, (size_t)g); }
void ck_keep_mask_avx512(uint64_t s, uint64_t h, uint32_t hi, uint32_t lo, int64_t f, int64_t g, uint8_t *t, uint8_t *redo) { (void)s; (void)h; (void)hi; (void)lo; (void)f; (void)t; memset(redo, 1, (size_t)g); }

void ck_key_low_counts_avx2(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint32_t *t) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; }
void ck_key_low_counts_avx512(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint32_t *t) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; }
void ck_mask_at_threshold_avx2(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint8_t *t, int64_t *a, int64_t *e) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; *a = 0; *e = 0; }
void ck_mask_at_threshold_avx512(const void *d, int b, int64_t s, int64_t c, uint32_t k, uint8_t *t, int64_t *a, int64_t *e) { (void)d; (void)b; (void)s; (void)c; (void)k; (void)t; *a = 0; *e = 0; }

uint32_t ck_select_key_avx2(uint32_t *k, int64_t c, int64_t r, uint32_t *s, int n) { (void)k; (void)c; (void)r; (void)s; (void)n; return 0; }
uint32_t ck_select_key_avx512(uint32_t *k, int64_t c, int64_t r, uint32_t *s, int n) { (void)k; (void)c; (void)r; (void)s; (void)n; return 0; }
void ck_bracket_pass_avx2(const void *d, int b, int64_t s, int64_t c, uint32_t l, uint32_t u, uint32_t m, uint8_t *t, uint32_t *k, uint32_t *o, int64_t *a, int64_t *n) { (void)d; (void)b; (void)s; (void)c; (void)l; (void)u; (void)m; (void)t; (void)k; (void)o; *a = 0; *n = 0; }
void ck_bracket_pass_avx512(const void *d, int b, int64_t s, int64_t c, uint32_t l, uint32_t u, uint32_t m, uint8_t *t, uint32_t *k, uint32_t *o, int64_t *a, int64_t *n) { (void)d; (void)b; (void)s; (void)c; (void)l; (void)u; (void)m; (void)t; (void)k; (void)o; *a = 0; *n = 0; }
int ck_row_top_k_avx2(const void *d, int b, int64_t c, int64_t k, int64_t r, double v, const void *x, uint32_t *s, uint8_t *t) { (void)d; (void)b; (void)c; (void)k; (void)r; (void)v; (void)x; (void)s; (void)t; return 0; }
int ck_row_top_k_avx512(const void *d, int b, int64_t c, int64_t k, int64_t r, double v, const void *x, uint32_t *s, uint8_t *t) { (void)d; (void)b; (void)c; (void)k; (void)r; (void)v; (void)x; (void)s; (void)t; return 0; }

#endif
