/* Sparse-tap inference kernel of mnc's MouseNet (see mnc_backends/torch/fast/sparse.py).
 *
 * Plain C with a C ABI, loaded through ctypes; it needs no PyTorch headers. Python compiles the
 * network into a program (a stream of int32 ops) plus a float array of weights, and lays out a
 * per-thread arena of zero-padded population buffers; this file only executes the program one
 * image at a time, so an image's activity stays in the core's cache.
 *
 * Each kept tap of a masked convolution is one multiply-accumulate of a shifted input plane
 * into a block of output rows held in vector registers. A population read with stride s is
 * also stored as s*s phase images (as each block is stored), so every read is contiguous. All
 * projections into a population accumulate into the same registers; BatchNorm (eval) is
 * folded into weights and bias; ReLU on store.
 *
 * Variants: AVX-512F, AVX2+FMA (x86-64, chosen at run time with __builtin_cpu_supports) and a
 * portable one built from GCC/Clang vector extensions (SSE2, NEON, or scalar code).
 *
 * The module init function only exists so setuptools can build and install this file as an
 * extension module; it exports no Python functions.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

enum { OP_END = 0, OP_PLACE = 1, OP_CONV = 2, OP_PHASE = 3, OP_POOL = 4, OP_COPY = 5 };
enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

/* Header of an OP_CONV: the target population's buffer, as the program lays it out. */
struct output {
    int channels, height, width;
    int origin, cstride, pitch; /* first valid element of channel 0; channel and row strides */
    int stride;                 /* phase split factor (1: the population has no phase images) */
    int phase_offset, phase_cstride, phase_pitch, phase_size;
    int top, left;              /* padding above and left of the valid area */
    int column_step;            /* floats between output columns (a sub-pixel phase: > 1) */
    int relu;                   /* 1: ReLU on store; 0: store the sum (a partial drive) */
};
#define OUTPUT_FIELDS 15

/* ---- portable variant: 4-float vectors ---- */
#define SUFFIX generic
#define VL 4
#define TARGET
#define WIDE_R 3
#define WIDE_NV 4
#define NARROW_R 6
#define NARROW_NV 2
#define TRAIN_R 4
#include "train_body.h"
#include "kernel_body.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MNC_X86 1
#include <immintrin.h>
/* ---- AVX2 + FMA: 8-float vectors, 16 registers ---- */
#define SUFFIX avx2
#define VL 8
#define TARGET __attribute__((target("avx2,fma")))
#define WIDE_R 3
#define WIDE_NV 4
#define NARROW_R 6
#define NARROW_NV 2
#define TRAIN_R 8
#include "train_body.h"
#include "kernel_body.h"

/* ---- AVX-512F: 16-float vectors, 32 registers ---- */
#define SUFFIX avx512
#define VL 16
#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define WIDE_R 4
#define WIDE_NV 4
#define NARROW_R 8
#define NARROW_NV 2
#define TRAIN_R 8
#include "train_body.h"
#include "kernel_body.h"
#endif

/* The best variant this CPU runs. */
EXPORT int mnc_sparse_best_isa(void) {
#ifdef MNC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
#endif
    return ISA_GENERIC;
}

#define FIRST(n) ((int)((int64_t)(n) * part / parts))
#define LAST(n) ((int)((int64_t)(n) * (part + 1) / parts))

/* Copy one image, or a clip's frame (channels x height x width, contiguous, p[6] floats
 * into the input), into its padded buffer. */
static const int32_t *place(const int32_t *p, const float *images, float *arena, int part,
                            int parts) {
    const int channels = p[0], height = p[1], width = p[2];
    const int offset = p[3], cstride = p[4], pitch = p[5];
    const float *image = images + p[6];
    for (int c = FIRST(channels); c < LAST(channels); c++)
        for (int y = 0; y < height; y++)
            memcpy(arena + offset + (ptrdiff_t)c * cstride + (ptrdiff_t)y * pitch,
                   image + ((ptrdiff_t)c * height + y) * width, sizeof(float) * width);
    return p + 7;
}

/* Split padded buffers into stride x stride phase images: phase(py, px)[y][x] =
 * buffer[stride*y + py][stride*x + px]. */
static const int32_t *phase(const int32_t *p, float *arena, int part, int parts) {
    const int channels = p[0], height = p[1], width = p[2], stride = p[3];
    const int src = p[4], src_cstride = p[5], src_pitch = p[6];
    const int dst = p[7], dst_cstride = p[8], dst_pitch = p[9], phase_size = p[10];
    for (int c = FIRST(channels); c < LAST(channels); c++) {
        const float *in = arena + src + (ptrdiff_t)c * src_cstride;
        for (int py = 0; py < stride; py++)
            for (int px = 0; px < stride; px++) {
                float *out = arena + dst + (ptrdiff_t)(py * stride + px) * phase_size
                             + (ptrdiff_t)c * dst_cstride;
                for (int y = 0; stride * y + py < height; y++) {
                    const float *row = in + (ptrdiff_t)(stride * y + py) * src_pitch + px;
                    float *orow = out + (ptrdiff_t)y * dst_pitch;
                    for (int x = 0; stride * x + px < width; x++) orow[x] = row[stride * x];
                }
            }
    }
    return p + 11;
}

/* Adaptive average pooling to pool x pool (PyTorch's bins), written as C, H, W features;
 * divided by p[8] (the readout steps a recurrent network averages) and, with p[9], added to
 * the features already there (the earlier readout steps'). */
static const int32_t *pool(const int32_t *p, const float *arena, float *features, int part,
                           int parts) {
    const int channels = p[0], height = p[1], width = p[2], size = p[3];
    const int src = p[4], cstride = p[5], pitch = p[6], out = p[7];
    const float steps = (float)p[8];
    const int accumulate = p[9];
    for (int c = FIRST(channels); c < LAST(channels); c++) {
        const float *in = arena + src + (ptrdiff_t)c * cstride;
        for (int i = 0; i < size; i++) {
            const int y0 = (i * height) / size, y1 = ((i + 1) * height + size - 1) / size;
            for (int j = 0; j < size; j++) {
                const int x0 = (j * width) / size, x1 = ((j + 1) * width + size - 1) / size;
                float sum = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) sum += in[(ptrdiff_t)y * pitch + x];
                const float mean = sum / (float)((y1 - y0) * (x1 - x0)) / steps;
                float *feature = features + out + (c * size + i) * size + j;
                *feature = accumulate ? *feature + mean : mean;
            }
        }
    }
    return p + 10;
}

/* Copy a population's activity (after ReLU) out of its padded buffer, as C, H, W floats
 * (MouseNet.features). */
static const int32_t *copy_out(const int32_t *p, const float *arena, float *features,
                               int part, int parts) {
    const int channels = p[0], height = p[1], width = p[2];
    const int src = p[3], cstride = p[4], pitch = p[5], out = p[6];
    for (int c = FIRST(channels); c < LAST(channels); c++)
        for (int y = 0; y < height; y++)
            memcpy(features + out + ((ptrdiff_t)c * height + y) * width,
                   arena + src + (ptrdiff_t)c * cstride + (ptrdiff_t)y * pitch,
                   sizeof(float) * width);
    return p + 7;
}

/* Threads working on the same image meet here after every op (a spinning barrier that
 * yields the core while it waits, since the machine may be shared). */
typedef struct {
    atomic_int waiting;
    atomic_int generation;
} barrier_t;

static void barrier_wait(barrier_t *barrier, int parts) {
    if (parts <= 1) return;
    const int generation = atomic_load(&barrier->generation);
    if (atomic_fetch_add(&barrier->waiting, 1) == parts - 1) {
        atomic_store(&barrier->waiting, 0);
        atomic_fetch_add(&barrier->generation, 1);
        return;
    }
    for (int spin = 0; atomic_load(&barrier->generation) == generation; spin++)
        if (spin > 256) sched_yield();
}

/* Run the program on images [0, count); each image's pooled features go to
 * features + n * feature_stride. With parts > 1, `parts` threads call this with the same
 * arguments (one arena, one zeroed barrier) and part = 0 .. parts-1; each computes its share
 * of every population's rows (pooling and copies: channels). Returns 0, or -1 for an unknown
 * op (a bad program). */
static int run_images(const int32_t *program, const float *weights, float *arena,
                      const float *images, int64_t count, int64_t image_stride, float *features,
                      int64_t feature_stride, int isa, int part, int parts, barrier_t *barrier) {
    if (parts < 1 || part < 0 || part >= parts || (parts > 1 && barrier == NULL)) return -2;
    for (int64_t n = 0; n < count; n++) {
        const int32_t *p = program;
        const float *w = weights;
        const float *image = images + n * image_stride;
        float *out = features + n * feature_stride;
        for (;;) {
            const int op = *p++;
            if (op == OP_END) break;
            switch (op) {
            case OP_PLACE: p = place(p, image, arena, part, parts); break;
            case OP_PHASE: p = phase(p, arena, part, parts); break;
            case OP_POOL: p = pool(p, arena, out, part, parts); break;
            case OP_COPY: p = copy_out(p, arena, out, part, parts); break;
            case OP_CONV:
#ifdef MNC_X86
                if (isa == ISA_AVX512) { p = conv_avx512(p, &w, arena, part, parts); break; }
                if (isa == ISA_AVX2) { p = conv_avx2(p, &w, arena, part, parts); break; }
#endif
                p = conv_generic(p, &w, arena, part, parts);
                break;
            default: return -1; /* every part reads the same program, so all stop here */
            }
            barrier_wait(barrier, parts);
        }
    }
    return 0;
}

/* Run the program on a batch with up to `threads` threads (OpenMP; one thread in a build
 * without it). With at least as many images as threads, each thread takes a contiguous share
 * of the images and its own arena (arenas[i]); with fewer, the threads share each image by
 * rows in arenas[0]. OpenMP is used rather than threads of our own because PyTorch's CPU
 * build runs its operators on the same libgomp pool: its workers, still spinning after the
 * last torch operator, take our work instead of competing with it for the cores. */
EXPORT int mnc_sparse_run(const int32_t *program, const float *weights, float *const *arenas,
                          const float *images, int64_t count, int64_t image_stride,
                          float *features, int64_t feature_stride, int isa, int threads) {
    if (threads < 1 || count < 0) return -2;
#ifndef _OPENMP
    threads = 1;
#endif
    if (count == 0) return 0;
    if (threads == 1)
        return run_images(program, weights, arenas[0], images, count, image_stride, features,
                          feature_stride, isa, 0, 1, NULL);
    barrier_t barrier;
    atomic_init(&barrier.waiting, 0);
    atomic_init(&barrier.generation, 0);
    int status = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(| : status)
#endif
    {
#ifdef _OPENMP
        const int index = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int index = 0, team = 1;
#endif
        if (count < team) {
            status |= run_images(program, weights, arenas[0], images, count, image_stride,
                                 features, feature_stride, isa, index, team, &barrier);
        } else {
            const int64_t first = count * index / team, last = count * (index + 1) / team;
            status |= run_images(program, weights, arenas[index],
                                 images + first * image_stride, last - first, image_stride,
                                 features + first * feature_stride, feature_stride, isa, 0, 1,
                                 NULL);
        }
    }
    return status;
}

/* The classifier of a few images: logits[n, o] = bias[o] + sum_i weight[o, i] * features[n, i].
 * At batch 1 the classifier's weights (1000 x 2304 floats for the default spec) come from
 * memory on every call, since the kernel's arena has just passed through the caches, and the
 * library's matrix-vector product read them at about half the rate of a plain stream. Here the
 * threads split the rows; each row is streamed once for all `count` images and summed in a
 * fixed order (the same logits on any number of threads). Returns 0, or -1 for bad
 * arguments (nothing written). */
typedef float readout_vf __attribute__((vector_size(32), aligned(4)));
enum { READOUT_LANES = 8, READOUT_MAX_IMAGES = 8 };

static float row_dot(const float *row, const float *x, int64_t inputs) {
    readout_vf sum[4] = {{0}, {0}, {0}, {0}};
    int64_t i = 0;
    for (; i + 4 * READOUT_LANES <= inputs; i += 4 * READOUT_LANES)
        for (int k = 0; k < 4; k++)
            sum[k] += *(const readout_vf *)(row + i + k * READOUT_LANES)
                      * *(const readout_vf *)(x + i + k * READOUT_LANES);
    const readout_vf total = (sum[0] + sum[1]) + (sum[2] + sum[3]);
    float result = 0.0f;
    for (int lane = 0; lane < READOUT_LANES; lane++) result += total[lane];
    for (; i < inputs; i++) result += row[i] * x[i];
    return result;
}

EXPORT int mnc_dense_readout(const float *features, int64_t count, int64_t inputs,
                             const float *weight, const float *bias, int64_t outputs,
                             float *logits, int threads) {
    if (count < 0 || count > READOUT_MAX_IMAGES || inputs < 0 || outputs < 0 || threads < 1)
        return -1;
#ifndef _OPENMP
    threads = 1;
#endif
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
#endif
    for (int64_t o = 0; o < outputs; o++) {
        const float *row = weight + o * inputs;
        for (int64_t n = 0; n < count; n++)
            logits[n * outputs + o] = bias[o] + row_dot(row, features + n * inputs, inputs);
    }
    return 0;
}

/* Offsets of the taps (channel, dy, dx) into one image of an input of in_channels planes of
 * in_h x in_w (rows `pitch` floats apart, planes `plane` floats apart), checked so that every
 * tap of every output pixel (out_h x out_w) lies inside it; NULL when a tap does not (or no
 * memory). The caller frees. */
static int64_t *tap_offsets(int64_t taps, const int32_t *channels, const int32_t *dys,
                            const int32_t *dxs, int in_channels, int in_h, int in_w,
                            int64_t pitch, int64_t plane, int out_h, int out_w) {
    if (in_w > pitch || (in_channels > 1 && (int64_t)in_h * pitch > plane)) return NULL;
    int64_t *offsets = malloc(sizeof(int64_t) * (size_t)(taps > 0 ? taps : 1));
    if (offsets == NULL) return NULL;
    for (int64_t t = 0; t < taps; t++) {
        if (channels[t] < 0 || channels[t] >= in_channels || dys[t] < 0 || dxs[t] < 0
            || dys[t] + out_h > in_h || dxs[t] + out_w > in_w) {
            free(offsets);
            return NULL;
        }
        offsets[t] = channels[t] * plane + dys[t] * pitch + dxs[t];
    }
    return offsets;
}

static int valid_starts(const int64_t *starts, int out_channels, int64_t taps) {
    if (out_channels < 0 || starts[0] != 0 || starts[out_channels] != taps) return 0;
    for (int o = 0; o < out_channels; o++)
        if (starts[o + 1] < starts[o]) return 0;
    return 1;
}

/* Training, forward pass and input gradient: out[n, o, y, x] = (with accumulate: out +) sum
 * over the taps t of output channel o (starts[o] .. starts[o+1] - 1) of
 * weights[t] * in[n, channel[t], y + dy[t], x + dx[t]], float32. in: count images of
 * in_channels planes of in_h x in_w, strides (row, plane, image) in floats; out: out_channels
 * planes of out_h x out_w, strides (row, plane, image). Returns 0, or -1 for a tap outside
 * the input or bad arguments (nothing written), -3 when out of memory. */
EXPORT int mnc_train_correlate(const float *in, int64_t count, int in_channels, int in_h,
                               int in_w, const int64_t *in_strides, float *out,
                               int out_channels, int out_h, int out_w,
                               const int64_t *out_strides, const int64_t *starts,
                               const int32_t *channels, const int32_t *dys,
                               const int32_t *dxs, const float *weights, int accumulate,
                               int isa, int threads) {
    if (count < 0 || threads < 1 || out_h < 0 || out_w < 0 || out_strides[0] < out_w)
        return -1;
    const int64_t taps = starts[out_channels > 0 ? out_channels : 0];
    if (!valid_starts(starts, out_channels, taps)) return -1;
    int64_t *offsets = tap_offsets(taps, channels, dys, dxs, in_channels, in_h, in_w,
                                   in_strides[0], in_strides[1], out_h, out_w);
    if (offsets == NULL) return -1;
    const int64_t in_pitches[2] = {in_strides[0], in_strides[2]};
#ifndef _OPENMP
    threads = 1;
#endif
#ifdef MNC_X86
    if (isa == ISA_AVX512)
        correlate_avx512(in, count, in_pitches, out, out_channels, out_h, out_w, out_strides,
                         starts, offsets, weights, accumulate, threads);
    else if (isa == ISA_AVX2)
        correlate_avx2(in, count, in_pitches, out, out_channels, out_h, out_w, out_strides,
                       starts, offsets, weights, accumulate, threads);
    else
#endif
        correlate_generic(in, count, in_pitches, out, out_channels, out_h, out_w,
                          out_strides, starts, offsets, weights, accumulate, threads);
    free(offsets);
    return 0;
}

/* Training, weight gradient: result[t] = sum over n, y < out_h, x < out_w of
 * grad[n, o, y, x] * in[n, channel[t], y + dy[t], x + dx[t]] for each tap t of output channel
 * o. Same tap lists and return codes as mnc_train_correlate. */
EXPORT int mnc_train_tap_gradient(const float *grad, const float *in, int64_t count,
                                  int in_channels, int in_h, int in_w, int out_channels,
                                  int out_h, int out_w, const int64_t *starts,
                                  const int32_t *channels, const int32_t *dys,
                                  const int32_t *dxs, float *result, int isa, int threads) {
    if (count < 0 || threads < 1 || out_h < 0 || out_w < 0) return -1;
    const int64_t taps = starts[out_channels > 0 ? out_channels : 0];
    if (!valid_starts(starts, out_channels, taps)) return -1;
    int64_t *offsets = tap_offsets(taps, channels, dys, dxs, in_channels, in_h, in_w, in_w,
                                   (int64_t)in_h * in_w, out_h, out_w);
    if (offsets == NULL) return -1;
#ifndef _OPENMP
    threads = 1;
#endif
#ifdef MNC_X86
    if (isa == ISA_AVX512)
        tap_dot_avx512(grad, in, count, in_channels, in_h, in_w, out_channels, out_h, out_w,
                       starts, offsets, result, threads);
    else if (isa == ISA_AVX2)
        tap_dot_avx2(grad, in, count, in_channels, in_h, in_w, out_channels, out_h, out_w,
                     starts, offsets, result, threads);
    else
#endif
        tap_dot_generic(grad, in, count, in_channels, in_h, in_w, out_channels, out_h, out_w,
                        starts, offsets, result, threads);
    free(offsets);
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sparse_taps",
    "Sparse-tap MouseNet kernel; a C library loaded with ctypes (no Python functions).",
    -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__sparse_taps(void) { return PyModule_Create(&module); }
