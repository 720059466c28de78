// The body of the wide kernels, included once per instruction set by WideKernels.c
// under `#pragma clang attribute push(target(...))`, with CK_ISA naming the set: every
// function here, helpers included, is compiled for that set only and named after it.

#define CK_PASTE2(a, b) a##_##b
#define CK_PASTE(a, b) CK_PASTE2(a, b)
#define CK_NAME(name) CK_PASTE(name, CK_ISA)

/// Philox-4x32-10 on two sets of sixteen blocks, `first + 16 s ..< first + 16 s + 16` for
/// set s, one block per lane (see Philox.swift): word j of set s in `w[4 s + j]`. The sets'
/// rounds are independent chains, interleaved so that one fills the other's latency. (A
/// last set past the tensor's end is computed and not used.)
CK_INLINE void CK_NAME(philox16)(uint64_t first, uint64_t seed, uint64_t hash, u32x16 w[8]) {
    enum { sets = 2 };
    for (int s = 0; s < sets; s++) {
        const u64x16 lanes = (u64x16){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} + (first + 16 * (uint64_t)s);
        w[4 * s] = __builtin_convertvector(lanes, u32x16);
        w[4 * s + 1] = __builtin_convertvector(lanes >> 32, u32x16);
        w[4 * s + 2] = (u32x16)(uint32_t)hash;
        w[4 * s + 3] = (u32x16)(uint32_t)(hash >> 32);
    }
    // AVX-512 interleaves the sets' rounds; AVX2 (sixteen registers, two a vector) runs one
    // set's rounds at a time, whose halves already fill each other's latency, and spills less.
    enum { together = CK_PHILOX_INTERLEAVE ? sets : 1 };
    for (int start = 0; start < sets; start += together) {
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
            for (int s = start; s < start + together; s++) {
                u32x16 *c = w + 4 * s;
                // The low words as a 32-bit multiply, the high ones from the 64-bit products
                // (clang pairs the even and odd lanes without widening the vector).
                const u32x16 hi0 = __builtin_convertvector((__builtin_convertvector(c[0], u64x16) * 0xD2511F53u) >> 32, u32x16);
                const u32x16 hi1 = __builtin_convertvector((__builtin_convertvector(c[2], u64x16) * 0xCD9E8D57u) >> 32, u32x16);
                const u32x16 next0 = hi1 ^ c[1] ^ k0, next2 = hi0 ^ c[3] ^ k1;
                c[1] = c[2] * 0xCD9E8D57u;
                c[3] = c[0] * 0xD2511F53u;
                c[0] = next0; c[2] = next2;
            }
        }
    }
}

/// The sixteen 16-bit draws of elements `16 j ..< 16 j + 16` of a group from word j of its
/// eight blocks (`half` 0: lanes 0..7 of `w`, the first group; 1: lanes 8..15): the low
/// halves of blocks 0..7, then their high halves.
CK_INLINE i32x16 CK_NAME(draws)(u32x16 w, int half) {
    const u32x16 low = w & 0xFFFFu, high = w >> 16;
    u32x16 d = half == 0
        ? __builtin_shufflevector(low, high, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
        : __builtin_shufflevector(low, high, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    return (i32x16)d;
}

CK_INLINE f32x16 CK_NAME(as_float)(u32x16 bits) { return (f32x16)bits; }
CK_INLINE u32x16 CK_NAME(as_bits)(f32x16 value) { return (u32x16)value; }

/// `base + m * (finetuned - base) (* or /) scale`, or the masked delta, as f32 bits;
/// `keep` lanes are all ones where the draw is below H.
CK_INLINE u32x16 CK_NAME(dare_lanes)(f32x16 b, f32x16 f, i32x16 keep, float scale, int divide, int merged) {
    const f32x16 delta = divide ? (f - b) / scale : (f - b) * scale;
    u32x16 value = CK_NAME(as_bits)(delta) & (u32x16)keep;
    if (merged) value = CK_NAME(as_bits)(CK_NAME(as_float)(value) + b);
    return value;
}

/// The keep lanes of sixteen elements (all ones where the draw is below H; all kept when
/// nothing is drawn), setting `*tie` when a draw equals H while L != 0 (it then needs its
/// refinement draw: the caller redoes the group).
CK_INLINE i32x16 CK_NAME(keep_lanes)(const ck_dare_args *a, u32x16 word, int half, int *tie) {
    const int32_t high = (int32_t)a->high;
    const i32x16 draw = a->high >= 65536 ? (i32x16)0 : CK_NAME(draws)(word, half);
    if (a->low != 0) *tie |= __builtin_reduce_or(draw == high) != 0;
    return draw < high;
}

/// The keep lanes of elements `i ..< i + 16`: from the given mask's bytes, or drawn.
CK_INLINE i32x16 CK_NAME(keep_of)(const ck_dare_args *a, u32x16 word, int half, int *tie, int64_t i) {
    if (a->mask) return (i32x16)(__builtin_convertvector(*(const u8x16_u *)(a->mask + i), u32x16) != 0);
    return CK_NAME(keep_lanes)(a, word, half, tie);
}

/// Adds sixteen elements to the block's sums exactly as `compareDelta` does: D = f - b,
/// D' = o - b (merged) or o, where `o` is the value as stored.
CK_INLINE void CK_NAME(accumulate)(ck_sums *s, f32x16 b, f32x16 f, f32x16 o, int merged) {
    const f32x16 before = f - b, after = merged ? o - b : o, difference = after - before;
    s->sum_before += before; s->squares_before += before * before;
    s->sum_after += after; s->squares_after += after * after;
    s->error += difference * difference;
    s->nonzero += ((0u - (CK_NAME(as_bits)(before) & 0x7FFFFFFFu)) >> 31)
                | (((0u - (CK_NAME(as_bits)(after) & 0x7FFFFFFFu)) >> 31) << 16);
}

CK_INLINE void CK_NAME(store_sums)(ck_delta_sums *target, const ck_sums *s) {
    *(f32x16_u *)target->sum_before = s->sum_before; *(f32x16_u *)target->squares_before = s->squares_before;
    *(f32x16_u *)target->sum_after = s->sum_after; *(f32x16_u *)target->squares_after = s->squares_after;
    *(f32x16_u *)target->error = s->error;
    *(u32x16_u *)target->nonzero_before = s->nonzero & 0xFFFFu; *(u32x16_u *)target->nonzero_after = s->nonzero >> 16;
}

CK_INLINE void CK_NAME(dare_bf16_group)(const ck_dare_args *a, int64_t group, const u32x16 w[4], int half, uint8_t *redo,
                               int divide, int merged, int stream, int stats, ck_sums *sums) {
    const uint16_t *b = (const uint16_t *)a->base + group * 64, *f = (const uint16_t *)a->finetuned + group * 64;
    uint16_t *out = (uint16_t *)a->output + group * 64;
    i32x16 flags = 0;
    int tie = 0;
    for (int j = 0; j < 4; j++) {
        const i32x16 keep = CK_NAME(keep_of)(a, w[j], half, &tie, group * 64 + 16 * j);
        const u32x16 bb = __builtin_convertvector(*(const u16x16_u *)(b + 16 * j), u32x16) << 16;
        const u32x16 fb = __builtin_convertvector(*(const u16x16_u *)(f + 16 * j), u32x16) << 16;
        const u32x16 v = CK_NAME(dare_lanes)(CK_NAME(as_float)(bb), CK_NAME(as_float)(fb), keep, a->scale, divide, merged);
        flags |= (i32x16)((v & 0x7FFFFFFFu) > 0x7F800000u);   // NaN: needs the careful rounding
        const u16x16 rounded = __builtin_convertvector((v + 0x7FFFu + ((v >> 16) & 1u)) >> 16, u16x16);
        if (stats) {
            const f32x16 stored = CK_NAME(as_float)(__builtin_convertvector(rounded, u32x16) << 16);
            CK_NAME(accumulate)(sums, CK_NAME(as_float)(bb), CK_NAME(as_float)(fb), stored, merged);
        }
        if (stream) __builtin_nontemporal_store(rounded, (u16x16 *)(out + 16 * j));
        else *(u16x16_u *)(out + 16 * j) = rounded;
    }
    *redo = (uint8_t)(tie | (__builtin_reduce_or(flags) != 0));
}

CK_INLINE void CK_NAME(dare_f32_group)(const ck_dare_args *a, int64_t group, const u32x16 w[4], int half, uint8_t *redo,
                              int divide, int merged, int stream, int stats, ck_sums *sums) {
    const float *b = (const float *)a->base + group * 64, *f = (const float *)a->finetuned + group * 64;
    float *out = (float *)a->output + group * 64;
    int tie = 0;
    for (int j = 0; j < 4; j++) {
        const i32x16 keep = CK_NAME(keep_of)(a, w[j], half, &tie, group * 64 + 16 * j);
        const f32x16 bv = *(const f32x16_u *)(b + 16 * j), fv = *(const f32x16_u *)(f + 16 * j);
        const f32x16 v = CK_NAME(as_float)(CK_NAME(dare_lanes)(bv, fv, keep, a->scale, divide, merged));
        if (stats) CK_NAME(accumulate)(sums, bv, fv, v, merged);
        if (stream) __builtin_nontemporal_store(v, (f32x16 *)(out + 16 * j));
        else *(f32x16_u *)(out + 16 * j) = v;
    }
    *redo = (uint8_t)tie;
}

/// Four groups per Philox call (two sets of sixteen blocks), then the last ones; with
/// `stats`, the sums of each whole block of sixteen groups go to `a->sums`.
#define CK_DARE_LOOP(GROUP, a, first, groups, redo, divide, merged, stream, stats)                \
    do {                                                                                          \
        u32x16 w[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                   \
        ck_sums sums = {0, 0, 0, 0, 0, 0};                                                        \
        for (int64_t g = 0; g < (groups); g += 4) {                                               \
            const int64_t group = (first) + g;                                                    \
            if ((a)->high < 65536 && !(a)->mask) CK_NAME(philox16)((uint64_t)group * 8, (a)->seed, (a)->name_hash, w); \
            for (int q = 0; q < 4 && g + q < (groups); q++) {                                     \
                GROUP(a, group + q, w + 4 * (q >> 1), q & 1, (redo) + g + q, divide, merged, stream, stats, &sums); \
                if (stats && (g + q) % 16 == 15) {                                                \
                    CK_NAME(store_sums)((a)->sums + (g + q) / 16, &sums);                         \
                    sums = (ck_sums){0, 0, 0, 0, 0, 0};                                           \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/// The loop with its loop-invariant choices turned into constants, so each body is straight code.
#define CK_DARE_KERNEL(NAME, GROUP)                                                                \
    void NAME(const ck_dare_args *a, int64_t first, int64_t groups, uint8_t *redo) {               \
        const int key = a->divide * 8 + a->merged * 4 + a->stream * 2 + (a->sums != 0);            \
        switch (key) {                                                                             \
        case 0: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 0, 0, 0); break;                    \
        case 1: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 0, 0, 1); break;                    \
        case 2: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 0, 1, 0); break;                    \
        case 3: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 0, 1, 1); break;                    \
        case 4: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 1, 0, 0); break;                    \
        case 5: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 1, 0, 1); break;                    \
        case 6: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 1, 1, 0); break;                    \
        case 7: CK_DARE_LOOP(GROUP, a, first, groups, redo, 0, 1, 1, 1); break;                    \
        case 8: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 0, 0, 0); break;                    \
        case 9: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 0, 0, 1); break;                    \
        case 10: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 0, 1, 0); break;                   \
        case 11: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 0, 1, 1); break;                   \
        case 12: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 1, 0, 0); break;                   \
        case 13: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 1, 0, 1); break;                   \
        case 14: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 1, 1, 0); break;                   \
        default: CK_DARE_LOOP(GROUP, a, first, groups, redo, 1, 1, 1, 1); break;                   \
        }                                                                                          \
        if (a->stream) _mm_sfence();                                                               \
    }

/// Groups of 32 words (eight blocks, word-major), four groups per Philox call.
CK_INLINE void CK_NAME(philox_words)(uint64_t seed, uint64_t hash, int64_t first, int64_t groups, uint32_t *target) {
    for (int64_t g = 0; g < groups; g += 4) {
        u32x16 w[8];
        CK_NAME(philox16)((uint64_t)(first + g) * 8, seed, hash, w);
        for (int q = 0; q < 4 && g + q < groups; q++) {
            const u32x16 *set = w + 4 * (q >> 1);
            uint32_t *out = target + (g + q) * 32;
            for (int j = 0; j < 4; j++) {
                const u32x8 words = (q & 1) == 0 ? __builtin_shufflevector(set[j], set[j], 0, 1, 2, 3, 4, 5, 6, 7)
                                                 : __builtin_shufflevector(set[j], set[j], 8, 9, 10, 11, 12, 13, 14, 15);
                *(u32x8_u *)(out + 8 * j) = words;
            }
        }
    }
}

void CK_NAME(ck_keep_mask)(uint64_t seed, uint64_t hash, uint32_t high, uint32_t low, int64_t first, int64_t groups,
                           uint8_t *target, uint8_t *redo) {
    ck_dare_args a;
    memset(&a, 0, sizeof a);
    a.high = high; a.low = low;
    for (int64_t g = 0; g < groups; g += 4) {
        u32x16 w[8];
        CK_NAME(philox16)((uint64_t)(first + g) * 8, seed, hash, w);
        for (int q = 0; q < 4 && g + q < groups; q++) {
            int tie = 0;
            for (int j = 0; j < 4; j++) {
                const i32x16 keep = CK_NAME(keep_lanes)(&a, w[4 * (q >> 1) + j], q & 1, &tie);
                *(u8x16_u *)(target + (g + q) * 64 + 16 * j) = __builtin_convertvector(keep & 1, u8x16);
            }
            redo[g + q] = (uint8_t)tie;
        }
    }
}

CK_DARE_KERNEL(CK_NAME(ck_dare_bf16), CK_NAME(dare_bf16_group))
CK_DARE_KERNEL(CK_NAME(ck_dare_f32), CK_NAME(dare_f32_group))

void CK_NAME(ck_philox_words)(uint64_t seed, uint64_t hash, int64_t first, int64_t groups, uint32_t *target) {
    CK_NAME(philox_words)(seed, hash, first, groups, target);
}

#undef CK_DARE_LOOP
#undef CK_DARE_KERNEL
#undef CK_NAME
#undef CK_PASTE
#undef CK_PASTE2
