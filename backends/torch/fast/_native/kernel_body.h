/* Kernel bodies, included once per instruction set by sparse_taps.c.
 *
 * Before inclusion the includer defines: SUFFIX (name suffix), VL (floats per vector),
 * TARGET (a function attribute or nothing), and the two register blocks
 * WIDE_R x WIDE_NV and NARROW_R x NARROW_NV (rows x vectors kept in registers).
 * Every function here is static; only conv_<SUFFIX> is called from outside. The parameters
 * are undefined again at the end, ready for the next variant.
 */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

typedef float FN(vf) __attribute__((vector_size(VL * 4)));
typedef float FN(vfu) __attribute__((vector_size(VL * 4), aligned(4)));

/* One block of an output channel: R rows x NV vectors from (r0, c0). Every kept tap (weight
 * x shifted input) is summed in registers; the sums go to tmp (R rows of NV * VL floats).
 * The tap loop is written so that it compiles to one broadcast of the weight and R * NV
 * multiply-adds with memory operands, the rows walked by one pointer: an address computed per
 * row (src + r * pitch) ran out of general registers and spilled them into vector registers
 * in the loop, and a weight written (vf){0} + w costs a scalar add before the broadcast. */
#define DEFINE_BLOCK(R, NV, KIND)                                                           \
TARGET static void FN(CAT(block, KIND))(                                                  \
    const int32_t *taps, const float *weights, const float *arena, float *tmp,             \
    int r0, int c0) {                                                                      \
    typedef FN(vf) vf;                                                                      \
    typedef FN(vfu) vfu;                                                                    \
    vf acc[R][NV];                                                                          \
    for (int r = 0; r < R; r++)                                                             \
        for (int v = 0; v < NV; v++) acc[r][v] = (vf){0} + weights[0];                      \
    const int32_t *q = taps;                                                                \
    const float *w = weights + 1;                                                           \
    const int segments = *q++;                                                              \
    for (int s = 0; s < segments; s++) {                                                    \
        const ptrdiff_t pitch = q[0];                                                       \
        const int count = q[1];                                                             \
        q += 2;                                                                             \
        const float *base = arena + r0 * pitch + c0;                                        \
        for (int t = 0; t < count; t++) {                                                   \
            const float *src = base + q[t];                                                 \
            const float wv = w[t];                                                          \
            for (int r = 0; r < R; r++, src += pitch)                                       \
                for (int v = 0; v < NV; v++)                                                \
                    acc[r][v] += wv * *(const vfu *)(src + v * VL);                         \
        }                                                                                   \
        q += count;                                                                         \
        w += count;                                                                         \
    }                                                                                       \
    for (int r = 0; r < R; r++)                                                             \
        for (int v = 0; v < NV; v++) *(vf *)&tmp[r * NV * VL + v * VL] = acc[r][v];         \
}

DEFINE_BLOCK(WIDE_R, WIDE_NV, wide)
DEFINE_BLOCK(NARROW_R, NARROW_NV, narrow)

#if VL == 16
/* even[k] = row[2k] and odd[k] = row[2k+1] for the first `count` floats of row: a stride-2
 * population's phase rows, split 32 floats at a time by two permutes instead of one scalar
 * store per float (the split was most of the time of the populations with few taps). Reads
 * and writes no float past the row's `count` (masked at the end). */
TARGET static void FN(deinterleave2)(const float *row, int count, float *even, float *odd) {
    const __m512i pick_even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,
                                               6, 4, 2, 0);
    const __m512i pick_odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9,
                                              7, 5, 3, 1);
    int x = 0;
    for (; x + 32 <= count; x += 32) {
        const __m512 a = _mm512_loadu_ps(row + x), b = _mm512_loadu_ps(row + x + 16);
        _mm512_storeu_ps(even + x / 2, _mm512_permutex2var_ps(a, pick_even, b));
        _mm512_storeu_ps(odd + x / 2, _mm512_permutex2var_ps(a, pick_odd, b));
    }
    const int left = count - x;
    if (left <= 0) return;
    const __mmask16 low = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
    const __mmask16 high = (__mmask16)(left <= 16 ? 0 : (1u << (left - 16)) - 1);
    const __m512 a = _mm512_maskz_loadu_ps(low, row + x);
    const __m512 b = _mm512_maskz_loadu_ps(high, row + x + 16);
    _mm512_mask_storeu_ps(even + x / 2, (__mmask16)((1u << ((left + 1) / 2)) - 1),
                          _mm512_permutex2var_ps(a, pick_even, b));
    _mm512_mask_storeu_ps(odd + x / 2, (__mmask16)((1u << (left / 2)) - 1),
                          _mm512_permutex2var_ps(a, pick_odd, b));
}
#endif

/* Store the valid part of a block with ReLU into the population's buffer and, when the
 * population is read with a stride s > 1, into its s x s phase images too (so no separate
 * pass splits it later). ReLU is written `t < 0 ? 0 : t` so that NaN passes through, as in
 * torch.relu (`t > 0 ? t : 0` would turn it into 0); it compiles to the same max
 * instruction, with its operands in the order that returns the NaN. */
TARGET static void FN(store)(const float *tmp, int tmp_pitch, const struct output *o,
                             float *arena, int c, int r0, int c0, int rows, int cols) {
    float *dst = arena + o->origin + (ptrdiff_t)c * o->cstride;
    if (!o->relu || o->column_step != 1) {
        /* a sub-pixel phase of an upsampled projection: every column_step-th float of the
         * target's partial drive, stored as summed (the target's own op adds it in) */
        const ptrdiff_t step = o->column_step;
        for (int r = 0; r < rows; r++) {
            const float *t = tmp + r * tmp_pitch;
            float *out = dst + (ptrdiff_t)(r0 + r) * o->pitch + (c0 * step);
            for (int x = 0; x < cols; x++) out[x * step] = t[x];
        }
        return;
    }
    for (int r = 0; r < rows; r++) {
        const float *t = tmp + r * tmp_pitch;
        float *out = dst + (ptrdiff_t)(r0 + r) * o->pitch + c0;
        for (int x = 0; x < cols; x++) out[x] = t[x] < 0.0f ? 0.0f : t[x];
    }
    const int s = o->stride;
    if (s <= 1) return;
    float *phases = arena + o->phase_offset + (ptrdiff_t)c * o->phase_cstride;
#if VL == 16
    if (s == 2) {  /* from the rows just stored, ReLU applied */
        const int x0 = o->left + c0;
        for (int r = 0; r < rows; r++) {
            const int y = o->top + r0 + r;
            float *line = phases + (ptrdiff_t)((y % 2) * 2) * o->phase_size
                          + (ptrdiff_t)(y / 2) * o->phase_pitch;
            /* row column x lands in phase (x0 + x) % 2 at column (x0 + x) / 2 */
            float *even = line + (ptrdiff_t)(x0 % 2) * o->phase_size + x0 / 2;
            float *odd = line + (ptrdiff_t)(1 - x0 % 2) * o->phase_size + (x0 + 1) / 2;
            FN(deinterleave2)(dst + (ptrdiff_t)(r0 + r) * o->pitch + c0, cols, even, odd);
        }
        return;
    }
#endif
    for (int r = 0; r < rows; r++) {
        const float *t = tmp + r * tmp_pitch;
        const int y = o->top + r0 + r;
        for (int px = 0; px < s; px++) {
            const int first = ((px - (o->left + c0) % s) % s + s) % s;
            float *out = phases + (ptrdiff_t)((y % s) * s + px) * o->phase_size
                         + (ptrdiff_t)(y / s) * o->phase_pitch + (o->left + c0 + first) / s;
            for (int x = first, k = 0; x < cols; x += s, k++) out[k] = t[x] < 0.0f ? 0.0f : t[x];
        }
    }
}

/* A target population; returns the stream position after its tap lists. Row blocks are the
 * outer loop, so consecutive channels reuse the same input rows from cache. When split in
 * parts, each part computes a contiguous share of the row blocks (its rows of every channel
 * read mostly the rows its own core just wrote). */
TARGET static const int32_t *FN(conv)(const int32_t *p, const float **weights,
                                      float *arena, int part, int parts) {
    const struct output o = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                             p[8], p[9], p[10], p[11], p[12], p[13], p[14]};
    const int channels = o.channels, height = o.height, width = o.width;
    p += OUTPUT_FIELDS;
    const float *w = *weights;
    const int32_t *taps[channels > 0 ? channels : 1];
    const float *tap_weights[channels > 0 ? channels : 1];
    for (int c = 0; c < channels; c++) {
        taps[c] = p;
        tap_weights[c] = w;
        const int segments = *p++;
        w += 1;
        for (int s = 0; s < segments; s++) {
            const int count = p[1];
            p += 2 + count;
            w += count;
        }
    }
    const int wide = width > NARROW_NV * VL;
    const int block_rows = wide ? WIDE_R : NARROW_R;
    const int block_cols = wide ? WIDE_NV * VL : NARROW_NV * VL;
    float tmp[WIDE_R * WIDE_NV * VL > NARROW_R * NARROW_NV * VL ? WIDE_R * WIDE_NV * VL
                                                                : NARROW_R * NARROW_NV * VL]
        __attribute__((aligned(64)));
    const int blocks = (height + block_rows - 1) / block_rows;
    const int first = (int)((int64_t)blocks * part / parts);
    const int last = (int)((int64_t)blocks * (part + 1) / parts);
    for (int b = first; b < last; b++) {
        const int r0 = b * block_rows;
        const int rows = height - r0 < block_rows ? height - r0 : block_rows;
        for (int c = 0; c < channels; c++) {
            for (int c0 = 0; c0 < width; c0 += block_cols) {
                const int cols = width - c0 < block_cols ? width - c0 : block_cols;
                if (wide)
                    FN(block_wide)(taps[c], tap_weights[c], arena, tmp, r0, c0);
                else
                    FN(block_narrow)(taps[c], tap_weights[c], arena, tmp, r0, c0);
                FN(store)(tmp, block_cols, &o, arena, c, r0, c0, rows, cols);
            }
        }
    }
    *weights = w;
    return p;
}

#undef DEFINE_BLOCK
#undef FN
#undef CAT
#undef CAT2
#undef SUFFIX
#undef VL
#undef TARGET
#undef WIDE_R
#undef WIDE_NV
#undef NARROW_R
#undef NARROW_NV
