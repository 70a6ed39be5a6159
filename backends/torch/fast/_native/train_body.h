/* Training kernels over the kept taps, included once per instruction set by sparse_taps.c
 * (before kernel_body.h, with the same SUFFIX, VL and TARGET defined, plus TRAIN_R: rows of
 * one register block, undefined again at the end).
 *
 * Both work on whole batches of contiguous NCHW float32 planes; a "tap list" is, per output
 * channel o, the taps starts[o] .. starts[o+1] - 1, each an offset into one image of the input
 * (channel * in_h * in_w + dy * in_w + dx) and a weight. Python pads (and phase-splits) the
 * input so every tap of every output pixel lies inside it: no bounds checks here.
 *
 * correlate: out[n, o, y, x] (+)= sum_t w[t] * in[n, offset[t] + y * in_w + x]. Forward pass, and
 * the input gradient (the same sum over the output gradient, with the taps transposed).
 * tap_dot: grad[t] = sum_n sum_(y, x) g[n, o, y, x] * in[n, offset[t] + y * in_w + x], the
 * gradient of each kept weight, summed per image in float32 vectors and over images in double.
 */

#define TCAT2(a, b) a##_##b
#define TCAT(a, b) TCAT2(a, b)
#define TFN(name) TCAT(name, SUFFIX)

typedef float TFN(tvf) __attribute__((vector_size(VL * 4)));
typedef float TFN(tvfu) __attribute__((vector_size(VL * 4), aligned(4)));
typedef double TFN(tvd) __attribute__((vector_size(VL * 8)));

/* R rows x one vector of output from `out` (row pitch out_w), over the taps of one channel.
 * A channel sums thousands of taps (the transposed taps of the input gradient: every output
 * channel's); summed one after another in float32, the error grows with their count, and
 * training-mode BatchNorm's backward amplifies it (4x plain's gradient error on the default
 * spec). So each run of TAP_RUN taps is summed in float32 registers and the runs in double;
 * a channel of at most TAP_RUN taps (most input-gradient channels of a small network) is one
 * run added to the output in float32, the same rounding without the conversions. */
#define TAP_RUN 16
#define DEFINE_CORRELATE_BLOCK(R, KIND)                                                     \
TARGET static void TFN(TCAT(correlate_block, KIND))(                                      \
    const float *in, ptrdiff_t in_w, const int64_t *offsets, const float *weights,         \
    int64_t taps, float *out, ptrdiff_t out_w, int accumulate) {                           \
    typedef TFN(tvf) vf;                                                                    \
    typedef TFN(tvfu) vfu;                                                                  \
    typedef TFN(tvd) vd;                                                                    \
    if (taps <= TAP_RUN) { /* one run: float32 only, no conversions */                      \
        vf run[R];                                                                          \
        for (int r = 0; r < R; r++)                                                         \
            run[r] = accumulate ? *(const vfu *)(out + r * out_w) : (vf){0};                \
        vf sum[R];                                                                          \
        for (int r = 0; r < R; r++) sum[r] = (vf){0};                                       \
        for (int64_t t = 0; t < taps; t++) {                                                \
            const float *src = in + offsets[t];                                             \
            const float wv = weights[t];                                                    \
            for (int r = 0; r < R; r++, src += in_w) sum[r] += wv * *(const vfu *)src;      \
        }                                                                                   \
        for (int r = 0; r < R; r++) *(vfu *)(out + r * out_w) = run[r] + sum[r];            \
        return;                                                                             \
    }                                                                                       \
    vd acc[R];                                                                              \
    for (int r = 0; r < R; r++)                                                             \
        acc[r] = accumulate ? __builtin_convertvector(*(const vfu *)(out + r * out_w), vd)  \
                            : (vd){0};                                                      \
    for (int64_t first = 0; first < taps; first += TAP_RUN) {                               \
        const int64_t last = first + TAP_RUN < taps ? first + TAP_RUN : taps;               \
        vf run[R];                                                                          \
        for (int r = 0; r < R; r++) run[r] = (vf){0};                                       \
        for (int64_t t = first; t < last; t++) {                                            \
            const float *src = in + offsets[t];                                             \
            const float wv = weights[t];                                                    \
            for (int r = 0; r < R; r++, src += in_w) run[r] += wv * *(const vfu *)src;      \
        }                                                                                   \
        for (int r = 0; r < R; r++) acc[r] += __builtin_convertvector(run[r], vd);          \
    }                                                                                       \
    for (int r = 0; r < R; r++)                                                             \
        *(vfu *)(out + r * out_w) = __builtin_convertvector(acc[r], vf);                    \
}

DEFINE_CORRELATE_BLOCK(TRAIN_R, rows)
DEFINE_CORRELATE_BLOCK(1, row)

/* One block of R (or fewer) output rows from y0, every column, of one output channel
 * (rows in_pitch and out_pitch floats apart). */
TARGET static void TFN(correlate_rows)(const float *in, ptrdiff_t in_pitch,
                                       const int64_t *offsets, const float *weights,
                                       int64_t taps, float *out, ptrdiff_t out_pitch,
                                       int out_h, int out_w, int y0, int accumulate) {
    const int rows = out_h - y0 < TRAIN_R ? out_h - y0 : TRAIN_R;
    int x0 = 0;
    for (; x0 + VL <= out_w; x0 += VL) {
        const float *base = in + (ptrdiff_t)y0 * in_pitch + x0;
        float *dst = out + (ptrdiff_t)y0 * out_pitch + x0;
        if (rows == TRAIN_R) {
            TFN(correlate_block_rows)(base, in_pitch, offsets, weights, taps, dst, out_pitch,
                                      accumulate);
        } else {
            for (int r = 0; r < rows; r++)
                TFN(correlate_block_row)(base + (ptrdiff_t)r * in_pitch, in_pitch, offsets,
                                         weights, taps, dst + (ptrdiff_t)r * out_pitch,
                                         out_pitch, accumulate);
        }
    }
    if (x0 < out_w && out_w >= VL) {
        /* The columns past the last whole vector: one more vector ending at the last column
         * (overlapping columns already written) into tmp, whose last columns are copied out
         * (added, with accumulate). Scalar sums there cost a tap per column: on an input
         * gradient 20 columns wide, the 4 past the vector took longer than the 16 before. */
        const int xs = out_w - VL;
        float tmp[TRAIN_R * VL];
        const float *base = in + (ptrdiff_t)y0 * in_pitch + xs;
        if (rows == TRAIN_R)
            TFN(correlate_block_rows)(base, in_pitch, offsets, weights, taps, tmp, VL, 0);
        else
            for (int r = 0; r < rows; r++)
                TFN(correlate_block_row)(base + (ptrdiff_t)r * in_pitch, in_pitch, offsets,
                                         weights, taps, tmp + r * VL, VL, 0);
        for (int r = 0; r < rows; r++) {
            float *dst = out + (ptrdiff_t)(y0 + r) * out_pitch;
            for (int x = x0; x < out_w; x++)
                dst[x] = accumulate ? dst[x] + tmp[r * VL + x - xs] : tmp[r * VL + x - xs];
        }
        return;
    }
    for (int r = 0; r < rows; r++) /* narrower than a vector: scalar sums */
        for (int x = x0; x < out_w; x++) {
            const float *src = in + (ptrdiff_t)(y0 + r) * in_pitch + x;
            float *dst = out + (ptrdiff_t)(y0 + r) * out_pitch + x;
            double sum = accumulate ? *dst : 0.0;
            for (int64_t t = 0; t < taps; t++) sum += weights[t] * src[offsets[t]];
            *dst = (float)sum;
        }
}

/* Images [0, count), split by (image, row block) among the threads, handed out one at a time
 * (on a shared machine a thread may lose its core for a while: the others take its share);
 * within a block, every output channel in turn, so the input rows it reads stay in cache. Strides in floats:
 * in (row, image), out (row, channel, image). */
TARGET static void TFN(correlate)(const float *in, int64_t count, const int64_t *in_strides,
                                  float *out, int out_channels, int out_h, int out_w,
                                  const int64_t *out_strides, const int64_t *starts,
                                  const int64_t *offsets, const float *weights,
                                  int accumulate, int threads) {
    const int64_t blocks = (out_h + TRAIN_R - 1) / TRAIN_R;
    const int64_t work = count * blocks;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (int64_t item = 0; item < work; item++) {
        const int64_t n = item / blocks;
        const int y0 = (int)(item % blocks) * TRAIN_R;
        const float *image = in + n * in_strides[1];
        for (int o = 0; o < out_channels; o++)
            TFN(correlate_rows)(image, in_strides[0], offsets + starts[o], weights + starts[o],
                                starts[o + 1] - starts[o],
                                out + n * out_strides[2] + o * out_strides[1], out_strides[0],
                                out_h, out_w, y0, accumulate);
    }
}

/* Weight gradients: under training-mode BatchNorm the output gradient of a channel sums to
 * zero over the batch, so a kept weight's gradient is a small difference of large sums. Each
 * run of rows is summed in float32 vectors (a row, or as many rows as give each lane
 * DOT_RUN products where a row is narrower than DOT_RUN vectors) and each run's sum is added
 * in double: the error then does not grow with the plane and the batch. Converting after
 * every row of a plane one vector wide cost more than the row's products. */
#define DOT_RUN 4
#define DOT_RUN_ROWS(out_w) \
    ((out_w) >= DOT_RUN * VL ? 1 : DOT_RUN * VL / ((out_w) > 0 ? (out_w) : 1))

/* sum over (y, x) of g[y, x] * in[y * in_w + x] for one image and one tap. */
TARGET static double TFN(plane_dot)(const float *g, const float *in, int in_w, int out_h,
                                    int out_w) {
    typedef TFN(tvf) vf;
    typedef TFN(tvfu) vfu;
    typedef TFN(tvd) vd;
    vd total = (vd){0};
    double tail = 0.0;
    const int run = DOT_RUN_ROWS(out_w);
    vf acc = (vf){0};
    for (int y = 0; y < out_h; y++) {
        const float *grow = g + (ptrdiff_t)y * out_w;
        const float *irow = in + (ptrdiff_t)y * in_w;
        int x = 0;
        for (; x + VL <= out_w; x += VL) acc += *(const vfu *)(grow + x) * *(const vfu *)(irow + x);
        for (; x < out_w; x++) tail += (double)grow[x] * irow[x];
        if ((y + 1) % run == 0 || y + 1 == out_h) {
            total += __builtin_convertvector(acc, vd);
            acc = (vf){0};
        }
    }
    for (int i = 0; i < VL; i++) tail += total[i];
    return tail;
}

/* plane_dot of four taps at once (offsets off[0..3] from in): each load of g serves four. */
TARGET static void TFN(plane_dot4)(const float *g, const float *in, const int64_t *off,
                                   int in_w, int out_h, int out_w, double *sums) {
    typedef TFN(tvf) vf;
    typedef TFN(tvfu) vfu;
    typedef TFN(tvd) vd;
    vd total0 = (vd){0}, total1 = (vd){0}, total2 = (vd){0}, total3 = (vd){0};
    double tail[4] = {0.0, 0.0, 0.0, 0.0};
    const float *in0 = in + off[0], *in1 = in + off[1], *in2 = in + off[2], *in3 = in + off[3];
    const int run = DOT_RUN_ROWS(out_w);
    vf acc0 = (vf){0}, acc1 = (vf){0}, acc2 = (vf){0}, acc3 = (vf){0};
    for (int y = 0; y < out_h; y++) {
        const float *grow = g + (ptrdiff_t)y * out_w;
        const ptrdiff_t row = (ptrdiff_t)y * in_w;
        int x = 0;
        for (; x + VL <= out_w; x += VL) {
            const vf gv = *(const vfu *)(grow + x);
            acc0 += gv * *(const vfu *)(in0 + row + x);
            acc1 += gv * *(const vfu *)(in1 + row + x);
            acc2 += gv * *(const vfu *)(in2 + row + x);
            acc3 += gv * *(const vfu *)(in3 + row + x);
        }
        for (; x < out_w; x++) {
            tail[0] += (double)grow[x] * in0[row + x];
            tail[1] += (double)grow[x] * in1[row + x];
            tail[2] += (double)grow[x] * in2[row + x];
            tail[3] += (double)grow[x] * in3[row + x];
        }
        if ((y + 1) % run == 0 || y + 1 == out_h) {
            total0 += __builtin_convertvector(acc0, vd);
            total1 += __builtin_convertvector(acc1, vd);
            total2 += __builtin_convertvector(acc2, vd);
            total3 += __builtin_convertvector(acc3, vd);
            acc0 = acc1 = acc2 = acc3 = (vf){0};
        }
    }
    for (int i = 0; i < VL; i++) {
        tail[0] += total0[i];
        tail[1] += total1[i];
        tail[2] += total2[i];
        tail[3] += total3[i];
    }
    for (int k = 0; k < 4; k++) sums[k] = tail[k];
}

/* Every output channel's taps by one thread (channels spread dynamically: their tap counts
 * differ); per tap, each image's sum in float32 added in double. */
TARGET static void TFN(tap_dot)(const float *grad, const float *in, int64_t count,
                                int in_channels, int in_h, int in_w, int out_channels,
                                int out_h, int out_w, const int64_t *starts,
                                const int64_t *offsets, float *result, int threads) {
    const int64_t in_image = (int64_t)in_channels * in_h * in_w;
    const int64_t out_plane = (int64_t)out_h * out_w;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
#endif
    for (int o = 0; o < out_channels; o++) {
        double sums[64];
        double four[4];
        for (int64_t first = starts[o]; first < starts[o + 1]; first += 64) {
            const int64_t last = first + 64 < starts[o + 1] ? first + 64 : starts[o + 1];
            for (int64_t t = first; t < last; t++) sums[t - first] = 0.0;
            for (int64_t n = 0; n < count; n++) {
                const float *g = grad + (n * out_channels + o) * out_plane;
                const float *image = in + n * in_image;
                int64_t t = first;
                for (; t + 4 <= last; t += 4) {
                    TFN(plane_dot4)(g, image, offsets + t, in_w, out_h, out_w, four);
                    for (int k = 0; k < 4; k++) sums[t + k - first] += four[k];
                }
                for (; t < last; t++)
                    sums[t - first] += TFN(plane_dot)(g, image + offsets[t], in_w, out_h, out_w);
            }
            for (int64_t t = first; t < last; t++) result[t] = (float)sums[t - first];
        }
    }
}

#undef DEFINE_CORRELATE_BLOCK
#undef TAP_RUN
#undef DOT_RUN
#undef DOT_RUN_ROWS
#undef TFN
#undef TCAT
#undef TCAT2
#undef TRAIN_R
