// The kernels' bodies, included twice by kernels.c: once per instruction set (GNI_ATTR, GNI_NAME).
// No include guard on purpose.

GNI_ATTR static void GNI_NAME(exp)(float *out, const float *input, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(out + i, EXP8(LOAD8(input + i)));
    if (i < count) STORE_PARTIAL(out + i, EXP8(LOAD_PARTIAL(input + i, count - i, 0)), count - i);
}

GNI_ATTR static void GNI_NAME(gelu_forward)(float *out, const float *input, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(out + i, GELU8(LOAD8(input + i)));
    if (i < count) STORE_PARTIAL(out + i, GELU8(LOAD_PARTIAL(input + i, count - i, 0)), count - i);
}

GNI_ATTR static void GNI_NAME(gelu_backward)(float *dInput, const float *input, const float *dOut, long count) {
    long i = 0;
    for (; i + 8 <= count; i += 8) STORE8(dInput + i, LOAD8(dOut + i) * GELU_GRAD8(LOAD8(input + i)));
    if (i < count) {
        long k = count - i;
        STORE_PARTIAL(dInput + i, LOAD_PARTIAL(dOut + i, k, 0) * GELU_GRAD8(LOAD_PARTIAL(input + i, k, 0)), k);
    }
}

GNI_ATTR static void GNI_NAME(softmax_rows)(float *x, long rows, long cols) {
    const long full = cols & ~7L, k = cols - full;
    for (long r = 0; r < rows; r++) {
        float *row = x + r * cols;
        v8f mv = SPLAT(-INFINITY);
        for (long j = 0; j < full; j += 8) mv = MAX8(mv, LOAD8(row + j));
        if (k) mv = MAX8(mv, LOAD_PARTIAL(row + full, k, -INFINITY));
        const v8f m = SPLAT(HMAX8(mv));
        v8f sv = SPLAT(0);
        for (long j = 0; j < full; j += 8) {
            v8f e = EXP8(LOAD8(row + j) - m);
            STORE8(row + j, e);
            sv += e;
        }
        if (k) {
            // Padding lanes hold -inf: e^-inf is clamped to ~1e-38, so they are masked out of the sum.
            v8f e = EXP8(LOAD_PARTIAL(row + full, k, -INFINITY) - m);
            STORE_PARTIAL(row + full, e, k);
            v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
            sv += SELECT8(lane < (int)k, e, SPLAT(0));
        }
        const v8f inv = SPLAT(1.0f / SUM8(sv));
        for (long j = 0; j < full; j += 8) STORE8(row + j, LOAD8(row + j) * inv);
        if (k) STORE_PARTIAL(row + full, LOAD_PARTIAL(row + full, k, 0) * inv, k);
    }
}

GNI_ATTR static void GNI_NAME(softmax_backward_rows)(float *d, const float *p, long rows, long cols) {
    const long full = cols & ~7L, k = cols - full;
    for (long r = 0; r < rows; r++) {
        const float *pr = p + r * cols;
        float *dr = d + r * cols;
        v8f acc = SPLAT(0);
        for (long j = 0; j < full; j += 8) acc += LOAD8(pr + j) * LOAD8(dr + j);
        if (k) acc += LOAD_PARTIAL(pr + full, k, 0) * LOAD_PARTIAL(dr + full, k, 0);
        const v8f dot = SPLAT(SUM8(acc));
        for (long j = 0; j < full; j += 8) STORE8(dr + j, LOAD8(pr + j) * (LOAD8(dr + j) - dot));
        if (k) STORE_PARTIAL(dr + full, LOAD_PARTIAL(pr + full, k, 0) * (LOAD_PARTIAL(dr + full, k, 0) - dot), k);
    }
}
