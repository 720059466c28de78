// The body of the wide selection kernels, included once per instruction set by
// WideKernels.c (see DareKernelBody.h for the scheme). Order keys as `orderKeys` makes
// them: the bits of x + 0 (one key for both zeros), negative values inverted, positive
// ones with the top bit set, NaN 0; so keys compare as the values do.

#define CK_PASTE2(a, b) a##_##b
#define CK_PASTE(a, b) CK_PASTE2(a, b)
#define CK_NAME(name) CK_PASTE(name, CK_ISA)

/// The keys of sixteen elements from `i` on (F32 when `bf16` is 0, else BF16).
CK_INLINE u32x16 CK_NAME(keys16)(const void *data, int bf16, int64_t i) {
    u32x16 bits = bf16 ? __builtin_convertvector(*(const u16x16_u *)((const uint16_t *)data + i), u32x16) << 16
                       : *(const u32x16_u *)((const uint32_t *)data + i);
    const u32x16 magnitude = bits & 0x7FFFFFFFu;
    bits &= (u32x16)(magnitude != 0);                                  // -0 is +0
    const u32x16 negative = (u32x16)((i32x16)bits >> 31);
    const u32x16 key = bits ^ (negative | 0x80000000u);
    return key & (u32x16)(magnitude <= 0x7F800000u);                   // NaN is 0
}

CK_INLINE uint32_t CK_NAME(key1)(const void *data, int bf16, int64_t i) {
    uint32_t bits = bf16 ? (uint32_t)((const uint16_t *)data)[i] << 16 : ((const uint32_t *)data)[i];
    const uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return 0;
    if (magnitude == 0) bits = 0;
    return bits ^ ((uint32_t)((int32_t)bits >> 31) | 0x80000000u);
}

void CK_NAME(ck_key_low_counts)(const void *data, int bf16, int64_t start, int64_t count, uint32_t bucket, uint32_t *table) {
    int64_t i = start;
    const int64_t end = start + count;
    for (; i + 16 <= end; i += 16) {
        const u32x16 keys = CK_NAME(keys16)(data, bf16, i);
        const bool16 hit = __builtin_convertvector((keys >> 16) == bucket, bool16);
        uint16_t hits;
        __builtin_memcpy(&hits, &hit, sizeof hits);   // one bit a lane
        if (hits == 0) continue;
        uint32_t lanes[16];
        *(u32x16_u *)lanes = keys;
        for (; hits != 0; hits &= (uint16_t)(hits - 1)) table[lanes[__builtin_ctz(hits)] & 0xFFFFu] += 1;
    }
    for (; i < end; i++) {
        const uint32_t key = CK_NAME(key1)(data, bf16, i);
        if (key >> 16 == bucket) table[key & 0xFFFFu] += 1;
    }
}

void CK_NAME(ck_mask_at_threshold)(const void *data, int bf16, int64_t start, int64_t count, uint32_t threshold,
                                   uint8_t *target, int64_t *above, int64_t *equal) {
    int64_t i = start, greater = 0, same = 0;
    const int64_t end = start + count;
    u32x16 greater_lanes = 0, same_lanes = 0;
    for (; i + 16 <= end; i += 16) {
        const u32x16 keys = CK_NAME(keys16)(data, bf16, i);
        const u32x16 is_above = (u32x16)(keys > threshold) & 1u, is_equal = (u32x16)(keys == threshold) & 1u;
        greater_lanes += is_above;
        same_lanes += is_equal;
        *(u8x16_u *)(target + i) = __builtin_convertvector(is_above | (is_equal << 1), u8x16);
    }
    greater += __builtin_reduce_add(greater_lanes);
    same += __builtin_reduce_add(same_lanes);
    for (; i < end; i++) {
        const uint32_t key = CK_NAME(key1)(data, bf16, i);
        greater += key > threshold;
        same += key == threshold;
        target[i] = key > threshold ? 1 : key == threshold ? 2 : 0;
    }
    *above = greater;
    *equal = same;
}

/// Stores the lanes of `values` whose bit is set in `bits` at `target`, in lane order, and
/// returns how many. Writes sixteen lanes there whatever the count: the caller leaves room.
/// Branch-free: at a few percent of lanes set, a branch on "any set" would mispredict often.
CK_INLINE int CK_NAME(compress16)(uint32_t *target, u32x16 values, uint16_t bits) {
#if CK_COMPRESS_512
    // The register form: the memory form is slow on some cores (Zen 4).
    *(u32x16_u *)target = (u32x16)_mm512_maskz_compress_epi32(bits, (__m512i)values);
    return __builtin_popcount(bits);
#else
    const u32x8 low = __builtin_shufflevector(values, values, 0, 1, 2, 3, 4, 5, 6, 7);
    const u32x8 high = __builtin_shufflevector(values, values, 8, 9, 10, 11, 12, 13, 14, 15);
    const int first = __builtin_popcount(bits & 0xFFu);
    const __m256i low_order = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)ck_compress_order[bits & 0xFFu]));
    const __m256i high_order = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)ck_compress_order[bits >> 8]));
    _mm256_storeu_si256((__m256i *)target, _mm256_permutevar8x32_epi32((__m256i)low, low_order));
    _mm256_storeu_si256((__m256i *)(target + first), _mm256_permutevar8x32_epi32((__m256i)high, high_order));
    return first + __builtin_popcount(bits >> 8);
#endif
}

/// Vectors of sixteen keys of the bracket pass (below), from `*at` while sixteen fit before
/// `stop`; `*at` moves past them. Keys above `marked_above` are marked in `target`; offsets
/// count from `first`. With `sparse`, vectors without keys inside skip the listing;
/// `hit_vectors` counts those with some.
CK_INLINE void CK_NAME(bracket_vectors)(const void *data, int bf16, int64_t first, int64_t *at, int64_t stop,
                                        uint32_t lower, uint32_t upper, uint32_t marked_above, uint8_t *target,
                                        uint32_t *listed_keys, uint32_t *offsets, int sparse,
                                        int64_t *greater, int64_t *listed, int64_t *hit_vectors) {
    const uint32_t width = upper - lower;
    const u32x16 lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    u32x16 greater_lanes = 0;
    int64_t i = *at, listed_count = *listed, hit_count = 0;
    for (; i + 16 <= stop; i += 16) {
        const u32x16 keys = CK_NAME(keys16)(data, bf16, i);
        greater_lanes += (u32x16)(keys > upper) & 1u;
        if (target) *(u8x16_u *)(target + i) = __builtin_convertvector((u32x16)(keys > marked_above) & 1u, u8x16);
        const bool16 inside = __builtin_convertvector(keys - lower <= width, bool16);
        uint16_t hits;
        __builtin_memcpy(&hits, &inside, sizeof hits);   // one bit a lane
        hit_count += hits != 0;
        if (sparse && hits == 0) continue;
        // At most i - first keys are listed before this vector: its sixteen lanes fit in the range's room.
        if (offsets) CK_NAME(compress16)(offsets + listed_count, lanes + (uint32_t)(i - first), hits);
        listed_count += CK_NAME(compress16)(listed_keys + listed_count, keys, hits);
    }
    *greater += __builtin_reduce_add(greater_lanes);
    *listed = listed_count;
    *hit_vectors += hit_count;
    *at = i;
}

#if !CK_COMPRESS_512
/// The 32-bit order key of the BF16 order key `key` (the F32 key of the same value): the
/// high half, with the low half set where the value is negative (its F32 bits inverted).
CK_INLINE uint32_t CK_NAME(wide_key)(uint32_t key) {
    return key << 16 | (key != 0 && key < 0x8000u ? 0xFFFFu : 0);
}

/// The largest 16-bit key whose 32-bit key is not above `key`.
CK_INLINE uint32_t CK_NAME(key16_at_most)(uint32_t key) {
    const uint32_t high = key >> 16;
    return CK_NAME(wide_key)(high) > key ? high - 1 : high;   // high >= 1 there: wide_key(0) = 0
}

/// The 16-bit order keys of sixteen BF16 elements at `data` (the high halves of their
/// 32-bit ones, which are monotone in them).
CK_INLINE u16x16 CK_NAME(bf16_keys)(const uint16_t *data) {
    u16x16 bits = *(const u16x16_u *)data;
    const u16x16 magnitude = bits & 0x7FFFu;
    bits &= (u16x16)(magnitude != 0);                                  // -0 is +0
    const u16x16 negative = (u16x16)((i16x16)bits >> 15);
    return (bits ^ (negative | 0x8000u)) & (u16x16)(magnitude <= 0x7F80u);   // NaN is 0
}

/// `bracket_vectors` with `sparse` for BF16, on 16-bit keys, thirty-two a step: half the
/// work of widening them first, and one mask store, count and branch for two vectors. The
/// bracket becomes the 16-bit keys from `low` to `high`; only vectors with keys inside
/// widen theirs.
static void CK_NAME(sparse_bf16_vectors)(const uint16_t *data, int64_t first, int64_t *at, int64_t stop,
                                         uint32_t lower, uint32_t upper, uint32_t marked_above, uint8_t *target,
                                         uint32_t *listed_keys, uint32_t *offsets, int64_t *greater, int64_t *listed) {
    // low: the smallest 16-bit key not below `lower`.
    const uint32_t high = CK_NAME(key16_at_most)(upper), mark = CK_NAME(key16_at_most)(marked_above);
    uint32_t low = lower >> 16;
    if (CK_NAME(wide_key)(low) < lower) low += 1;
    const int empty = low > high;   // no 16-bit key inside (low may be 0x10000)
    const uint16_t low16 = (uint16_t)low, width16 = (uint16_t)(high - low);
    // AVX2 compares 16-bit lanes as signed: keys and bound with their top bit flipped.
    const __m256i flip = _mm256_set1_epi16((short)0x8000), high_signed = _mm256_set1_epi16((short)(high ^ 0x8000u));
    const __m256i mark_signed = _mm256_set1_epi16((short)(mark ^ 0x8000u));
    const u32x16 lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    int64_t i = *at, greater_count = 0, listed_count = *listed;
    for (; i + 32 <= stop; i += 32) {
        const u16x16 keys[2] = {CK_NAME(bf16_keys)(data + i), CK_NAME(bf16_keys)(data + i + 16)};
        const __m256i first_signed = _mm256_xor_si256((__m256i)keys[0], flip);
        const __m256i second_signed = _mm256_xor_si256((__m256i)keys[1], flip);
        // Packed to thirty-two bytes in lane order.
        const __m256i above = _mm256_permute4x64_epi64(_mm256_packs_epi16(_mm256_cmpgt_epi16(first_signed, high_signed),
                                                                          _mm256_cmpgt_epi16(second_signed, high_signed)), 0xD8);
        greater_count += __builtin_popcount((uint32_t)_mm256_movemask_epi8(above));
        if (target) {
            const __m256i marked = _mm256_packs_epi16(_mm256_cmpgt_epi16(first_signed, mark_signed),
                                                      _mm256_cmpgt_epi16(second_signed, mark_signed));
            const __m256i ordered = _mm256_permute4x64_epi64(marked, 0xD8);
            _mm256_storeu_si256((__m256i *)(target + i), _mm256_and_si256(ordered, _mm256_set1_epi8(1)));
        }
        const u16x16 inside[2] = {(u16x16)(keys[0] - low16 <= width16), (u16x16)(keys[1] - low16 <= width16)};
        const __m256i any = (__m256i)(inside[0] | inside[1]);
        if (empty || _mm256_testz_si256(any, any)) continue;
        for (int half = 0; half < 2; half++) {
            const bool16 hit = __builtin_convertvector(inside[half], bool16);
            uint16_t hits;
            __builtin_memcpy(&hits, &hit, sizeof hits);   // one bit a lane
            const int64_t from = i + 16 * half;
            const u32x16 wide = CK_NAME(keys16)(data, 1, from);
            if (offsets) CK_NAME(compress16)(offsets + listed_count, lanes + (uint32_t)(from - first), hits);
            listed_count += CK_NAME(compress16)(listed_keys + listed_count, wide, hits);
        }
    }
    *greater += greater_count;
    *listed = listed_count;
    *at = i;
}
#endif

void CK_NAME(ck_bracket_pass)(const void *data, int bf16, int64_t start, int64_t count, uint32_t lower, uint32_t upper,
                              uint32_t marked_above, uint8_t *target, uint32_t *listed_keys, uint32_t *offsets,
                              int64_t *above, int64_t *listed) {
    int64_t i = start, greater = 0, listed_count = 0, hit_vectors = 0;
    const int64_t end = start + count;
#if CK_COMPRESS_512
    // AVX-512's compress costs less than any branch on the keys.
    CK_NAME(bracket_vectors)(data, bf16, start, &i, end, lower, upper, marked_above, target, listed_keys, offsets, 0,
                             &greater, &listed_count, &hit_vectors);
#else
    // F32: the first 64 vectors tell how many have keys inside. Where few do (the usual
    // narrow bracket), the rest branch past the others: the two-halves compress costs more
    // than the mispredictions. Where many do (heavy ties inside the bracket), it runs on
    // every vector without a branch. BF16's 16-bit keys make the branch pay at any share.
    if (bf16) {
        CK_NAME(sparse_bf16_vectors)(data, start, &i, end, lower, upper, marked_above, target, listed_keys, offsets,
                                     &greater, &listed_count);
    } else {
        const int64_t probe = count < 16 * 64 ? count : 16 * 64;
        CK_NAME(bracket_vectors)(data, 0, start, &i, start + probe, lower, upper, marked_above, target, listed_keys,
                                 offsets, 0, &greater, &listed_count, &hit_vectors);
        CK_NAME(bracket_vectors)(data, 0, start, &i, end, lower, upper, marked_above, target, listed_keys, offsets,
                                 hit_vectors * 4 < probe / 16, &greater, &listed_count, &hit_vectors);
    }
#endif
    for (; i < end; i++) {
        const uint32_t key = CK_NAME(key1)(data, bf16, i);
        greater += key > upper;
        if (target) target[i] = key > marked_above;
        if (key - lower <= upper - lower) {
            listed_keys[listed_count] = key;
            if (offsets) offsets[listed_count] = (uint32_t)(i - start);
            listed_count += 1;
        }
    }
    *above = greater;
    *listed = listed_count;
}

/// The key of ascending rank `rank` among `keys[0..<count]`, count <= 32, without a branch
/// on the keys: each key's rank is counted against all the others.
CK_INLINE uint32_t CK_NAME(rank_in_32)(const uint32_t *keys, int64_t count, int64_t rank) {
    uint32_t padded[32];
    for (int lane = 0; lane < 32; lane++) padded[lane] = lane < count ? keys[lane] : UINT32_MAX;
    const u32x16 low = *(const u32x16_u *)padded, high = *(const u32x16_u *)(padded + 16);
    u32x16 low_less = 0, low_equal = 0, high_less = 0, high_equal = 0;
    for (int64_t j = 0; j < count; j++) {
        const uint32_t key = padded[j];
        low_less += (u32x16)(key < low) & 1u;
        low_equal += (u32x16)(key == low) & 1u;
        high_less += (u32x16)(key < high) & 1u;
        high_equal += (u32x16)(key == high) & 1u;
    }
    const uint32_t r = (uint32_t)rank;
    // Lanes past the count have rank >= count > r: never chosen.
    const u32x16 low_hit = (u32x16)(low_less <= r) & (u32x16)(r < low_less + low_equal);
    const u32x16 high_hit = (u32x16)(high_less <= r) & (u32x16)(r < high_less + high_equal);
    const uint32_t a = __builtin_reduce_max(low & low_hit), b = __builtin_reduce_max(high & high_hit);
    return a > b ? a : b;
}

/// The key of ascending rank `rank` among `keys[0..<count]`, by quickselect with
/// branch-free partitions: each round compresses the keys below and above a pivot (a
/// ninther) into two of three buffers (`keys`, `scratch`, `scratch + count`; all reordered),
/// and goes on in the side that holds the rank, or stops at the pivot. Among 32 keys or
/// fewer each key's rank is counted (a sort mispredicts a branch on about every key);
/// after `rounds` rounds (pivots that keep failing) a counting select finishes.
/// Keys are integers: the answer is the one every selection finds.
uint32_t CK_NAME(ck_select_key)(uint32_t *keys, int64_t count, int64_t rank, uint32_t *scratch, int rounds) {
    uint32_t *buffers[3] = {keys, scratch, scratch + count};
    int current = 0;
    for (int round = 0; round < rounds && count > 32; round++) {
        uint32_t *in = buffers[current];
        const int64_t step = count / 8, middle = count / 2;
        const uint32_t pivot = ck_median3(ck_median3(in[0], in[step], in[2 * step]),
                                          ck_median3(in[middle - step], in[middle], in[middle + step]),
                                          ck_median3(in[count - 1 - 2 * step], in[count - 1 - step], in[count - 1]));
        const int lower_at = (current + 1) % 3, upper_at = (current + 2) % 3;
        uint32_t *below = buffers[lower_at], *above = buffers[upper_at];
        int64_t i = 0, below_count = 0, above_count = 0;
        // Before each vector at most i keys went to either side: its sixteen lanes fit.
        for (; i + 16 <= count; i += 16) {
            const u32x16 k = *(const u32x16_u *)(in + i);
            const bool16 is_below = __builtin_convertvector(k < pivot, bool16), is_above = __builtin_convertvector(k > pivot, bool16);
            uint16_t below_bits, above_bits;
            __builtin_memcpy(&below_bits, &is_below, sizeof below_bits);
            __builtin_memcpy(&above_bits, &is_above, sizeof above_bits);
            below_count += CK_NAME(compress16)(below + below_count, k, below_bits);
            above_count += CK_NAME(compress16)(above + above_count, k, above_bits);
        }
        for (; i < count; i++) {
            const uint32_t k = in[i];
            below[below_count] = k;
            below_count += k < pivot;
            above[above_count] = k;
            above_count += k > pivot;
        }
        if (rank < below_count) { current = lower_at; count = below_count; }
        else if (rank >= count - above_count) { rank -= count - above_count; current = upper_at; count = above_count; }
        else return pivot;
    }
    uint32_t *in = buffers[current];
    if (count > 32) return ck_counting_select(in, count, rank);
    return CK_NAME(rank_in_32)(in, count, rank);
}

/// The top-k mask of one row of `cols` elements at `data`, in one pass over it. A sample of
/// `runs` runs of sixteen keys (one a stride, at a hashed place) brackets the threshold,
/// `deviations` standard deviations of a sample rank either side; the pass keeps the row's
/// keys (in cache for what follows), counts those above the bracket and lists those inside
/// it, among which the threshold is selected; then the mask is made from the kept keys:
/// those above the threshold, and as many equal to it, in index order, as make k. Returns
/// 1, or 0 when the bracket missed the threshold: `target` then holds no mask and the
/// caller selects the row another way. `scratch` holds 5 * cols keys; `cols >= 32 * runs`.
/// The pass prefetches the row at `next` (when not NULL): without it each row would start
/// with a wait on memory, the sample's loads first.
int CK_NAME(ck_row_top_k)(const void *data, int bf16, int64_t cols, int64_t k, int64_t runs, double deviations,
                          const void *next, uint32_t *scratch, uint8_t *target) {
    // work: 3 * cols, for the listed keys' select (the sample's take 4 * samples <= cols / 4).
    uint32_t *row_keys = scratch, *listed_keys = scratch + cols, *work = scratch + 2 * cols;
    const int64_t rank = cols - k, samples = 16 * runs, stride = cols / runs;
    for (int64_t run = 0; run < runs; run++) {
        const int64_t jitter = (int64_t)(((uint64_t)run * 0x9E3779B97F4A7C15ull) >> 40) % (stride - 15);
        *(u32x16_u *)(work + 16 * run) = CK_NAME(keys16)(data, bf16, run * stride + jitter);
    }
    const double fraction = (double)rank / (double)cols, center = fraction * (double)samples;
    const double spread = deviations * __builtin_sqrt((double)samples * fraction * (1 - fraction)) + 2;
    const int64_t low = (int64_t)__builtin_floor(center - spread), high = (int64_t)__builtin_ceil(center + spread);
    uint32_t lower = 0, upper = UINT32_MAX;
    // The selects reorder keys at work + samples, their scratch after them: first a copy of
    // the sample, then its keys from `lower` up, among which `upper` has a smaller rank.
    if (low >= 0) {
        memcpy(work + samples, work, (size_t)samples * sizeof *work);
        lower = CK_NAME(ck_select_key)(work + samples, samples, low, work + 2 * samples, 48);
    }
    if (high < samples) {
        int64_t from_lower = 0;
        for (int64_t at = 0; at < samples; at += 16) {   // samples is a multiple of 16
            const u32x16 keys = *(const u32x16_u *)(work + at);
            const bool16 kept = __builtin_convertvector(keys >= lower, bool16);
            uint16_t bits;
            __builtin_memcpy(&bits, &kept, sizeof bits);
            from_lower += CK_NAME(compress16)(work + samples + from_lower, keys, bits);
        }
        upper = CK_NAME(ck_select_key)(work + samples, from_lower, high - (samples - from_lower), work + 2 * samples, 48);
    }
    const uint32_t width = upper - lower;
    const int64_t size = bf16 ? 2 : 4;
    u32x16 above_lanes = 0;
    int64_t listed = 0, i = 0;
    // Branch-free: the bracket of a row's small sample holds a key in most vectors.
    for (; i + 16 <= cols; i += 16) {
        if (next) __builtin_prefetch((const char *)next + i * size);
        const u32x16 keys = CK_NAME(keys16)(data, bf16, i);
        *(u32x16_u *)(row_keys + i) = keys;
        above_lanes += (u32x16)(keys > upper) & 1u;
        const bool16 inside = __builtin_convertvector(keys - lower <= width, bool16);
        uint16_t hits;
        __builtin_memcpy(&hits, &inside, sizeof hits);   // one bit a lane
        listed += CK_NAME(compress16)(listed_keys + listed, keys, hits);   // room: at most i keys before
    }
    int64_t above = __builtin_reduce_add(above_lanes);
    for (; i < cols; i++) {
        const uint32_t key = CK_NAME(key1)(data, bf16, i);
        row_keys[i] = key;
        above += key > upper;
        listed_keys[listed] = key;
        listed += key - lower <= width;
    }
    const int64_t below = cols - above - listed;
    if (rank < below || rank >= below + listed) return 0;
    uint32_t threshold = lower;   // a bracket of one key: every listed key is it
    if (lower != upper) {
        memcpy(work, listed_keys, (size_t)listed * sizeof *work);
        threshold = CK_NAME(ck_select_key)(work, listed, rank - below, work + listed, 48);
    }
    u32x16 greater_lanes = 0;
    for (i = 0; i + 16 <= listed; i += 16) greater_lanes += (u32x16)(*(const u32x16_u *)(listed_keys + i) > threshold) & 1u;
    int64_t greater = __builtin_reduce_add(greater_lanes);
    for (; i < listed; i++) greater += listed_keys[i] > threshold;
    int64_t ties_left = k - above - greater;   // the keys equal to the threshold that are kept
    const u32x16 lane_bits = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
    for (i = 0; i + 16 <= cols; i += 16) {
        const u32x16 keys = *(const u32x16_u *)(row_keys + i);
        u32x16 kept = (u32x16)(keys > threshold) & 1u;
        const bool16 equal = __builtin_convertvector(keys == threshold, bool16);
        uint16_t ties;
        __builtin_memcpy(&ties, &equal, sizeof ties);
        const int64_t count = __builtin_popcount(ties);
        if (count <= ties_left) {   // every tie of this vector is kept (or it has none)
            kept |= (u32x16)(keys == threshold) & 1u;
            ties_left -= count;
        } else if (ties_left > 0) {   // the vector where the kept ties end: its first ones
            uint16_t first = 0;
            for (; ties_left > 0; ties &= (uint16_t)(ties - 1), ties_left--) first |= ties & (uint16_t)-ties;
            kept |= (u32x16)((lane_bits & first) != 0) & 1u;
        }
        *(u8x16_u *)(target + i) = __builtin_convertvector(kept, u8x16);
    }
    for (; i < cols; i++) {
        const uint32_t key = row_keys[i];
        const int64_t equal = key == threshold;
        target[i] = (uint8_t)((key > threshold) | (equal & (ties_left > 0)));
        ties_left -= equal;
    }
    return 1;
}

#undef CK_NAME
#undef CK_PASTE
#undef CK_PASTE2
