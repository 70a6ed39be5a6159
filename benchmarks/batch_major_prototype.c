/* One population's drive in a batch-major layout: LANES images in the lanes of one vector.
 *
 * A prototype for benchmarks/bench_batch_major.py, not part of the kernel. Every pixel of a
 * source plane is one vector holding that pixel of LANES images, so every tap's load is one
 * aligned vector (no cache-line splits) and a stride-2 read needs no phase images. The price is
 * a working set LANES times larger per output block. Output blocks of R rows x PX pixels are
 * summed in registers; source planes are taken G at a time, each output channel's partial
 * sums kept between groups, so a group's rows can stay in cache across the output channels.
 *
 * Usage: batch_major_prototype TAPS INPUT OUTPUT G ROUNDS
 *   TAPS:   int32 planes, height, padded, channels, out_height, stride, taps, then taps x
 *           (channel, plane, dy, dx) sorted by channel, then taps float32 weights
 *   INPUT:  float32 planes x padded x padded x LANES (the zero-padded source planes)
 *   OUTPUT: float32 channels x out_height x out_height x LANES, ReLU applied
 * Prints the median of ROUNDS runs in seconds. R and PX are set at compile time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef R
#define R 4
#endif
#ifndef PX
#define PX 4
#endif
#define LANES 16

typedef float vf __attribute__((vector_size(LANES * 4)));
typedef int32_t vi __attribute__((vector_size(LANES * 4)));

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int ascending(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void *read_file(const char *path, size_t size) {
    FILE *file = fopen(path, "rb");
    void *data = aligned_alloc(64, (size + 63) / 64 * 64);
    if (file == NULL || data == NULL || fread(data, 1, size, file) != size) {
        fprintf(stderr, "cannot read %zu bytes of %s\n", size, path);
        exit(2);
    }
    fclose(file);
    return data;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s TAPS INPUT OUTPUT G ROUNDS\n", argv[0]);
        return 2;
    }
    int32_t header[7];
    FILE *file = fopen(argv[1], "rb");
    if (file == NULL || fread(header, 4, 7, file) != 7) {
        fprintf(stderr, "%s: cannot read the 7 header fields\n", argv[1]);
        return 2;
    }
    fclose(file);
    const int planes = header[0], padded = header[2], channels = header[3];
    const int out_h = header[4], stride = header[5], taps = header[6];
    const int group = atoi(argv[4]), rounds = atoi(argv[5]);
    if (planes < 1 || padded < 1 || channels < 1 || out_h < 1 || stride < 1 || taps < 0
        || group < 1 || rounds < 1) {
        fprintf(stderr, "%s: a header field or argument is out of range\n", argv[1]);
        return 2;
    }
    const int32_t *tap = (const int32_t *)read_file(argv[1], 28 + 20 * (size_t)taps) + 7;
    const float *weight = (const float *)(tap + 4 * (size_t)taps);
    /* Whole blocks past the edge read (and write) extra rows and columns: room for them. */
    const int out_rows = (out_h + R - 1) / R * R, out_cols = (out_h + PX - 1) / PX * PX;
    const int pitch = padded + stride * PX, height = padded + stride * R;
    const size_t plane = (size_t)height * pitch;
    vf *in = aligned_alloc(64, sizeof(vf) * plane * planes);
    const vf *given = read_file(argv[2], sizeof(vf) * (size_t)planes * padded * padded);
    memset(in, 0, sizeof(vf) * plane * planes);
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < padded; y++)
            memcpy(in + p * plane + (size_t)y * pitch, given + ((size_t)p * padded + y) * padded,
                   sizeof(vf) * padded);
    /* Each channel's taps per group of planes: offsets in vectors. */
    const int groups = (planes + group - 1) / group;
    int *start = calloc((size_t)channels * groups + 1, sizeof(int));
    int64_t *offset = malloc(sizeof(int64_t) * (taps > 0 ? taps : 1));
    float *w = malloc(sizeof(float) * (taps > 0 ? taps : 1));
    int k = 0;
    for (int c = 0; c < channels; c++)
        for (int g = 0; g < groups; g++) {
            start[c * groups + g] = k;
            for (int t = 0; t < taps; t++)
                if (tap[4 * t] == c && tap[4 * t + 1] / group == g) {
                    offset[k] = tap[4 * t + 1] * (int64_t)plane + (int64_t)tap[4 * t + 2] * pitch
                                + tap[4 * t + 3];
                    w[k++] = weight[t];
                }
        }
    start[channels * groups] = k;
    vf *out = aligned_alloc(64, sizeof(vf) * (size_t)channels * out_rows * out_cols);
    vf *partial = aligned_alloc(64, sizeof(vf) * (size_t)channels * R * PX);
    double *took = malloc(sizeof(double) * rounds);
    for (int round = 0; round < rounds; round++) {
        const double begin = seconds();
        for (int y0 = 0; y0 < out_h; y0 += R)
            for (int x0 = 0; x0 < out_h; x0 += PX) {
                const vf *base = in + (size_t)stride * y0 * pitch + (size_t)stride * x0;
                for (int g = 0; g < groups; g++)
                    for (int c = 0; c < channels; c++) {
                        vf acc[R][PX];
                        vf *kept = partial + (size_t)c * R * PX;
                        for (int r = 0; r < R; r++)
                            for (int x = 0; x < PX; x++)
                                acc[r][x] = g == 0 ? (vf){0} : kept[r * PX + x];
                        for (int i = start[c * groups + g]; i < start[c * groups + g + 1]; i++) {
                            const vf *src = base + offset[i];
                            const float wv = w[i];
                            for (int r = 0; r < R; r++, src += (size_t)stride * pitch)
                                for (int x = 0; x < PX; x++) acc[r][x] += wv * src[stride * x];
                        }
                        if (g + 1 < groups) {
                            for (int r = 0; r < R; r++)
                                for (int x = 0; x < PX; x++) kept[r * PX + x] = acc[r][x];
                            continue;
                        }
                        vf *o = out + ((size_t)c * out_rows + y0) * out_cols + x0;
                        for (int r = 0; r < R; r++)
                            for (int x = 0; x < PX; x++) /* ReLU: keep the bits where > 0 */
                                o[r * out_cols + x] = (vf)((vi)acc[r][x] & (acc[r][x] > 0));
                    }
            }
        took[round] = seconds() - begin;
    }
    qsort(took, rounds, sizeof(double), ascending);
    file = fopen(argv[3], "wb");
    for (int c = 0; c < channels && file != NULL; c++)
        for (int y = 0; y < out_h; y++)
            fwrite(out + ((size_t)c * out_rows + y) * out_cols, sizeof(vf), out_h, file);
    if (file == NULL || fclose(file) != 0) return 2;
    printf("%.9f\n", took[rounds / 2]);
    return 0;
}
