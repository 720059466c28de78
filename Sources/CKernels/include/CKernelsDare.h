#ifndef CKERNELS_DARE_H
#define CKERNELS_DARE_H

// Wide-vector versions of the fused DARE pass and of Philox, selected at run time
// (`ck_cpu_level`). The portable build never executes an instruction its CPU lacks:
// each function carries its own target attribute and runs only where the CPU has it.
// Results are bit-identical to the Swift kernels (same stream layout, same f32
// operations in the same order, no contraction into FMA).

#include <stddef.h>
#include <stdint.h>

/// 0: portable (the Swift kernels), 1: AVX2, 2: AVX-512 (F, BW, VL).
int ck_cpu_level(void);

/// The sums `compareDelta` makes of one 1024-element block, in its sixteen f32 lanes
/// (lane l adds elements l, l + 16, ...): D = finetuned - base and the pruned D'.
typedef struct {
    float sum_before[16], squares_before[16], sum_after[16], squares_after[16], error[16];
    uint32_t nonzero_before[16], nonzero_after[16];
} ck_delta_sums;

/// One call of the fused DARE pass over whole 64-element groups.
typedef struct {
    const void *base;        ///< the base tensor's first element
    const void *finetuned;
    void *output;
    uint64_t seed;
    uint64_t name_hash;
    uint32_t high;           ///< `H` of the keep rule (16-bit draws below it are kept)
    uint32_t low;            ///< `L`: when non-zero, a draw equal to H needs its refinement
    float scale;
    int divide;              ///< 1: kept deltas are divided by `scale`, 0: multiplied
    int merged;              ///< 1: base + masked delta, 0: the masked delta alone
    int stream;              ///< 1: non-temporal stores (16-byte aligned output)
    /// When not NULL, the sums of each whole block of 16 groups from `first_group` (a
    /// multiple of 16) go to `sums[block]`; a last partial block is left out.
    ck_delta_sums *sums;
    /// When not NULL, element i is kept where `mask[i]` is not 0 and nothing is drawn
    /// (`seed`, `name_hash`, `high` and `low` are unused): the pass of a given mask.
    const uint8_t *mask;
} ck_dare_args;

/// Groups `first_group ..< first_group + groups`, whole groups only. Sets `redo[g]` to 1
/// for each group (relative to `first_group`) that the caller must redo in element
/// order: a draw that ties with H while L != 0, or a NaN result; 0 for the others.
void ck_dare_bf16_avx2(const ck_dare_args *args, int64_t first_group, int64_t groups, uint8_t *redo);
void ck_dare_bf16_avx512(const ck_dare_args *args, int64_t first_group, int64_t groups, uint8_t *redo);
void ck_dare_f32_avx2(const ck_dare_args *args, int64_t first_group, int64_t groups, uint8_t *redo);
void ck_dare_f32_avx512(const ck_dare_args *args, int64_t first_group, int64_t groups, uint8_t *redo);

/// The 32-bit stream words of groups `first_group ..< first_group + groups` (32 elements a
/// group, word-major as `Philox.blocks8` hands them out) into `target`.
void ck_philox_words_avx2(uint64_t seed, uint64_t name_hash, int64_t first_group, int64_t groups, uint32_t *target);
void ck_philox_words_avx512(uint64_t seed, uint64_t name_hash, int64_t first_group, int64_t groups, uint32_t *target);

/// Keep-mask bytes (1 kept, 0 dropped) of groups `first_group ..< first_group + groups`
/// (64 elements a group, from element 64 first_group) into `target`, by the keep rule
/// (`high`, `low`) of `KeepRule` (`high` < 65536). `redo[g]` is 1 for a group with a draw
/// equal to H while L != 0: its bytes must be redone with the refinement draws.
void ck_keep_mask_avx2(uint64_t seed, uint64_t name_hash, uint32_t high, uint32_t low, int64_t first_group, int64_t groups,
                       uint8_t *target, uint8_t *redo);
void ck_keep_mask_avx512(uint64_t seed, uint64_t name_hash, uint32_t high, uint32_t low, int64_t first_group, int64_t groups,
                         uint8_t *target, uint8_t *redo);

/// Selection passes over the order keys of F32 (`bf16` 0) or BF16 values (SelectKernelBody.h),
/// elements `start ..< start + count`: `ck_key_low_counts` adds 1 to `table[key & 0xFFFF]`
/// for each key whose high 16 bits are `bucket`; `ck_mask_at_threshold` writes 1 for a key
/// above `threshold`, 2 for one equal to it, else 0, to `target[i]`, and counts both.
void ck_key_low_counts_avx2(const void *data, int bf16, int64_t start, int64_t count, uint32_t bucket, uint32_t *table);
void ck_key_low_counts_avx512(const void *data, int bf16, int64_t start, int64_t count, uint32_t bucket, uint32_t *table);
void ck_mask_at_threshold_avx2(const void *data, int bf16, int64_t start, int64_t count, uint32_t threshold,
                               uint8_t *target, int64_t *above, int64_t *equal);
void ck_mask_at_threshold_avx512(const void *data, int bf16, int64_t start, int64_t count, uint32_t threshold,
                                 uint8_t *target, int64_t *above, int64_t *equal);

/// One pass of bracket selection over elements `start ..< start + count`:
/// counts the keys above `upper`, lists the keys in `lower ... upper` in index order (the
/// keys at `listed_keys`, their offsets from `start` at `offsets` when given) and, with a
/// `target`, writes 1 at `target[i]` for keys above `marked_above` (in the bracket), else 0.
void ck_bracket_pass_avx2(const void *data, int bf16, int64_t start, int64_t count, uint32_t lower, uint32_t upper,
                          uint32_t marked_above, uint8_t *target, uint32_t *listed_keys, uint32_t *offsets,
                          int64_t *above, int64_t *listed);
void ck_bracket_pass_avx512(const void *data, int bf16, int64_t start, int64_t count, uint32_t lower, uint32_t upper,
                            uint32_t marked_above, uint8_t *target, uint32_t *listed_keys, uint32_t *offsets,
                            int64_t *above, int64_t *listed);

/// The key of ascending rank `rank` among `keys[0..<count]` (reordered; `scratch` holds
/// 2 * count keys): quickselect with compressing partitions, at most `rounds` of them, then
/// a counting select (SelectKernelBody.h).
uint32_t ck_select_key_avx2(uint32_t *keys, int64_t count, int64_t rank, uint32_t *scratch, int rounds);
uint32_t ck_select_key_avx512(uint32_t *keys, int64_t count, int64_t rank, uint32_t *scratch, int rounds);

/// The top-k mask (1 kept, 0 not) of one row of `cols` elements at `data` into `target`,
/// by a sampled bracket and one pass; 0 when the bracket missed (`target` is then no mask),
/// else 1 (SelectKernelBody.h). `scratch` holds 5 * cols keys; `cols >= 32 * runs`; the
/// row at `next` (NULL: none) is prefetched.
int ck_row_top_k_avx2(const void *data, int bf16, int64_t cols, int64_t k, int64_t runs, double deviations,
                      const void *next, uint32_t *scratch, uint8_t *target);
int ck_row_top_k_avx512(const void *data, int bf16, int64_t cols, int64_t k, int64_t runs, double deviations,
                        const void *next, uint32_t *scratch, uint8_t *target);

#endif
