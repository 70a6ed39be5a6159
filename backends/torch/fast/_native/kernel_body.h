/* Kernel bodies, included once per instruction set by sparse_taps.c.
 *
 * Before inclusion the includer defines: SUFFIX (name suffix), VL (floats per vector),
 * TARGET (a function attribute or nothing), and the two register blocks
 * WIDE_R x WIDE_NV and NARROW_R x NARROW_NV (rows x vectors kept in registers).
 * Every function here is static; only run_<SUFFIX> is called from outside.
 */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

typedef float FN(vf) __attribute__((vector_size(VL * 4)));
typedef float FN(vfu) __attribute__((vector_size(VL * 4), aligned(4)));

/* One block of an output channel: R rows x NV vectors from (r0, c0). Every kept tap (weight
 * x shifted input) is summed in registers; the valid part is stored with ReLU. */
#define DEFINE_BLOCK(R, NV, KIND)                                                           \
TARGET static void FN(CAT(block, KIND))(                                                  \
    const int32_t *taps, const float *weights, const float *arena, float *dst,             \
    int r0, int c0, int rows, int cols, int dst_pitch) {                                   \
    typedef FN(vf) vf;                                                                      \
    typedef FN(vfu) vfu;                                                                    \
    float tmp[R][NV * VL];                                                                  \
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
            const vf wv = (vf){0} + w[t];                                                   \
            for (int r = 0; r < R; r++)                                                     \
                for (int v = 0; v < NV; v++)                                                \
                    acc[r][v] += wv * *(const vfu *)(src + r * pitch + v * VL);             \
        }                                                                                   \
        q += count;                                                                         \
        w += count;                                                                         \
    }                                                                                       \
    for (int r = 0; r < R; r++)                                                             \
        for (int v = 0; v < NV; v++) *(vfu *)&tmp[r][v * VL] = acc[r][v];                   \
    for (int r = 0; r < rows; r++) {                                                        \
        float *out = dst + (ptrdiff_t)(r0 + r) * dst_pitch + c0;                            \
        for (int c = 0; c < cols; c++) out[c] = tmp[r][c] > 0.0f ? tmp[r][c] : 0.0f;        \
    }                                                                                       \
}

DEFINE_BLOCK(WIDE_R, WIDE_NV, wide)
DEFINE_BLOCK(NARROW_R, NARROW_NV, narrow)

/* A target population (its output channels [first, last) when split in parts); returns the
 * stream position after its tap lists. Row blocks are the outer loop, so consecutive channels
 * reuse the same input rows from L1. */
TARGET static const int32_t *FN(conv)(const int32_t *p, const float **weights,
                                      float *arena, int part, int parts) {
    const int channels = p[0], height = p[1], width = p[2];
    const int dst_offset = p[3], dst_cstride = p[4], dst_pitch = p[5];
    p += 6;
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
    const int first = (int)((int64_t)channels * part / parts);
    const int last = (int)((int64_t)channels * (part + 1) / parts);
    for (int r0 = 0; r0 < height; r0 += block_rows) {
        const int rows = height - r0 < block_rows ? height - r0 : block_rows;
        for (int c = first; c < last; c++) {
            float *dst = arena + dst_offset + (ptrdiff_t)c * dst_cstride;
            for (int c0 = 0; c0 < width; c0 += block_cols) {
                const int cols = width - c0 < block_cols ? width - c0 : block_cols;
                if (wide)
                    FN(block_wide)(taps[c], tap_weights[c], arena, dst, r0, c0, rows, cols,
                                   dst_pitch);
                else
                    FN(block_narrow)(taps[c], tap_weights[c], arena, dst, r0, c0, rows, cols,
                                     dst_pitch);
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
