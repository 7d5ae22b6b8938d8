// A chunk of SGD steps of the character MLP in one call: forward, hand-written backward and
// update, the same math as core/step.py, with small matrix products written for these shapes.
//
// At batch 32 the model's matrices are tiny (32x6 @ 6x100, 32x100 @ 100x27): BLAS libraries
// spend microseconds per call on dispatch and packing, and a torch call per operation costs
// more. Here every product is one loop nest over vectors as wide as the target's registers
// (GCC/Clang vector extensions: 16 floats with AVX-512, 8 with AVX, 4 with SSE2 or NEON) with 8
// accumulators at once. A vector wider than the registers is split by the compiler and spills:
// 16-float vectors built for AVX2 ran 6-9x slower than torch's eager step, 8-float ones at the
// AVX-512 speed. Built at run time by core/native with the machine's C++ compiler for the -march
// it is given (CHARMLP_NATIVE_ARCH, default native); loaded with ctypes.
//
// Layout: sizes are padded to whole vectors (B, H, V, E, T*E -> Bp, Hp, Vp, Ep, TEp) in 64-byte
// aligned copies of the parameters, made at the start of a call and copied back at the end. Padding stays
// harmless: padded hidden units have zero weights both ways, padded vocabulary rows of the logits
// are never written, padded batch columns get a zero gradient. The activations are kept
// transposed (batch along the vector): every product reads whole vectors, and the softmax runs
// over VW examples at once with no horizontal max or sum per example. Two products need the other
// orientation (dl and dz batch-major), made by register-tile transposes; so are xT from the
// embeddings gathered batch-major (x) and dx, which updates C's rows, from dxT.

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sgd_vectors.h"

namespace {

// What a product does with its sums: store them, plus a bias per row or column, add them scaled
// to out, or times tanh's derivative (1 - h², h laid out as out: the backward pass through tanh
// in the epilogue, not a pass of its own over dhT and hT).
enum class Init { zero, row_bias, col_bias, accumulate, tanh_grad };

// out[r, j:j+VW*NV] (=|+=) Σ_k a[r*ars + k*aks] * b[k*ldb + j : …] for R rows from r0:
// R*NV independent vector accumulators, one broadcast of a per row and step of k. Inlined: as a
// call it spilled them for the `init` switch (8.0 -> 7.5 µs a step; inlining gemm too: build 3x).
// `init` a template argument: each product's code has only its own epilogue (a chunk at emb 10 /
// hidden 200: 19.4 -> 18.6 µs a step; build 1.1 -> 1.4 s)
template <Init init, int R, int NV>
__attribute__((always_inline)) inline void block(int r0, int j, int K, const float *a, long ars, long aks, const float *b,
                                                 long ldb, float *out, long ldo, const float *bias, float scale) {
    vf acc[R][NV] = {};
    for (int k = 0; k < K; ++k) {
        vf bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = load(b + k * ldb + j + v * VW);
        for (int i = 0; i < R; ++i) {
            float ai = a[(r0 + i) * ars + k * aks];
            for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
        }
    }
    for (int i = 0; i < R; ++i)
        for (int v = 0; v < NV; ++v) {
            float *o = out + (r0 + i) * ldo + j + v * VW;
            vf res = acc[i][v];
            switch (init) {
                case Init::zero: break;
                case Init::row_bias: res += bias[r0 + i]; break;
                case Init::col_bias: res += load(bias + j + v * VW); break;
                case Init::accumulate: res = load(o) + scale * res; break;
                case Init::tanh_grad: {  // bias is h
                    const vf h = load(bias + (o - out));
                    res *= 1.0f - h * h;
                    break;
                }
            }
            store(o, res);
        }
}

template <Init init, int NV>
inline void rows(int M, int j, int K, const float *a, long ars, long aks, const float *b, long ldb, float *out,
                 long ldo, const float *bias, float scale) {
    int r = 0;
    // 8 rows x 1 vector or 4 x 2: 8 accumulators in 16 registers (AVX, SSE); with AVX-512's 32,
    // 8 x 2: 16 accumulators hide the FMA latency better (10.8 -> 9.9 µs a step at the lecture's size)
    constexpr int R = NV == 1 || VW == 16 ? 8 : 4;
    for (; r + R <= M; r += R) block<init, R, NV>(r, j, K, a, ars, aks, b, ldb, out, ldo, bias, scale);
    switch (M - r) {
#define REST(n) \
    case n: block<init, n, NV>(r, j, K, a, ars, aks, b, ldb, out, ldo, bias, scale); break;
        REST(1) REST(2) REST(3) REST(4) REST(5) REST(6) REST(7)
#undef REST
        default: break;
    }
}

// The matrix product out (M x N) (=|+=) A (M x K, any strides) @ Bm (K x N, rows ldb apart); N a
// multiple of VW, all of out's and Bm's rows 64-byte aligned.
template <Init init>
void gemm(int M, int N, int K, const float *a, long ars, long aks, const float *b, long ldb, float *out, long ldo,
          const float *bias = nullptr, float scale = 1.0f) {
    int j = 0;
    for (; j + 2 * VW <= N; j += 2 * VW) rows<init, 2>(M, j, K, a, ars, aks, b, ldb, out, ldo, bias, scale);
    for (; j < N; j += VW) rows<init, 1>(M, j, K, a, ars, aks, b, ldb, out, ldo, bias, scale);
}


float *zeros(long n) {
    long bytes = (n * sizeof(float) + 63) / 64 * 64;
    auto *p = static_cast<float *>(std::aligned_alloc(64, bytes));
    if (p) std::memset(p, 0, bytes);  // a failed allocation is the caller's -1, not a crash here
    return p;
}

// lT (V x Bp, logits of example b in column b) becomes softmax - onehot(y), zero in the columns
// past B; returns the summed loss, -Σ log softmax[y]. VW examples at a time: their max and sum are
// vectors, taken across the vocabulary's rows.
float softmax_minus_onehot(float *lT, int B, int Bp, int V, const int64_t *ys) {
    float loss = 0;
    for (int b0 = 0; b0 < Bp; b0 += VW) {
        float *col = lT + b0;
        vf top = load(col);
        for (int v = 1; v < V; ++v) top = vmax(top, load(col + (long)v * Bp));
        float picked[VW];  // each example's logit of its target, before the exp
        for (int b = b0; b < B && b < b0 + VW; ++b) picked[b - b0] = lT[ys[b] * Bp + b];
        vf sum{};
        for (int v = 0; v < V; ++v) {
            const vf p = vexp(load(col + (long)v * Bp) - top);
            store(col + (long)v * Bp, p), sum += p;
        }
        const vf inv = lanes() < B - b0 ? 1.0f / sum : vf{};  // the columns past B get no gradient
        for (int v = 0; v < V; ++v) store(col + (long)v * Bp, load(col + (long)v * Bp) * inv);
        // -log softmax(l)[y] = log sum - (l[y] - top); the logs of the sums as one log of their
        // product (each in [1, V]: VW of them fit a double), not a scalar log per example
        double sums = 1;
        for (int b = b0; b < B && b < b0 + VW; ++b) {
            sums *= sum[b - b0];
            loss -= picked[b - b0] - top[b - b0];
            lT[ys[b] * Bp + b] -= 1.0f;
        }
        loss += (float)std::log(sums);
    }
    return loss;
}

// emb (V rows, Ep apart: C in aligned rows) += c dx (B rows, TEp apart) at each example's
// context, one vector per position and example, the lanes past E masked off: a row drawn twice
// gets both updates in turn, from the very floats it stored, which the CPU forwards
void add_at_contexts(int B, int T, int E, long TEp, long Ep, float c, const float *dx, const int64_t *xs, float *emb) {
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t)
            for (int e = 0; e < E; e += VW) {
                float *row = emb + xs[b * T + t] * Ep + e;
                store(row, load(row) + (lanes() < E - e ? c * loadu(dx + b * TEp + t * E + e) : vf{}));
            }
}

// x (B rows, TEp apart) = each example's T embedding rows side by side, a vector copied at a time
// from emb's aligned rows (V, Ep), spilling its zero padding past E, which the next copy
// overwrites (the last ones land in x's padding columns, the next row, or the slack past x's end)
void gather(int B, int T, int E, long TEp, long Ep, const float *emb, const int64_t *xs, float *x) {
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < T; ++t)
            for (int e = 0; e < E; e += VW) storeu(x + b * TEp + t * E + e, load(emb + xs[b * T + t] * Ep + e));
}

// One step's examples: contexts xs (B, T) and targets ys (B), as ids.
struct Examples {
    const int64_t *xs, *ys;
};

// k steps on the examples examples_of(s) gives for step s, at learning rates lrs (k); parameters C
// (V, E), W1 (T*E, H), b1 (H), W2 (H, V), b2 (V), contiguous float32, updated in place; losses
// (k) gets each step's mean minibatch loss. Returns 0, or -1 when out of memory.
template <class ExamplesOf>
int steps(int k, int B, int T, int E, int H, int V, float *C, float *W1, float *b1, float *W2, float *b2,
          ExamplesOf examples_of, const float *lrs, float *losses) {
    const int TE = T * E, TEp = padded(TE), Ep = padded(E), Bp = padded(B), Hp = padded(H), Vp = padded(V);
    float *emb = zeros((long)V * Ep);       // (V, Ep) C
    float *w1 = zeros((long)TE * Hp), *bias1 = zeros(Hp), *w2 = zeros((long)Hp * Vp), *bias2 = zeros(Vp);
    float *x = zeros((long)Bp * TEp + VW);  // (Bp, TEp) the gathered embeddings, and slack for gather
    float *xT = zeros((long)TEp * Bp);      // (TEp, Bp) the same, transposed
    float *hT = zeros((long)Hp * Bp);       // (Hp, Bp) tanh activations, transposed
    float *lT = zeros((long)Vp * Bp);       // (Vp, Bp) logits, transposed, then dloss/dlogits * B
    float *dl = zeros((long)Bp * Vp);       // (Bp, Vp) the same, batch-major
    float *dhT = zeros((long)Hp * Bp);      // (Hp, Bp) B * dloss/dz
    float *dz = zeros((long)Bp * Hp);       // (Bp, Hp) B * dloss/dz
    float *dxT = zeros((long)TEp * Bp);     // (TEp, Bp) B * dloss/dx
    float *dx = zeros((long)Bp * TEp + VW); // (Bp, TEp) the same, batch-major, and slack for add_at_contexts
    float *all[] = {emb, w1, bias1, w2, bias2, x, xT, hT, lT, dl, dhT, dz, dxT, dx};
    for (float *p : all)
        if (!p) {
            for (float *q : all) std::free(q);
            return -1;
        }
    for (int v = 0; v < V; ++v) std::memcpy(emb + (long)v * Ep, C + (long)v * E, E * sizeof(float));
    for (int j = 0; j < TE; ++j) std::memcpy(w1 + (long)j * Hp, W1 + (long)j * H, H * sizeof(float));
    std::memcpy(bias1, b1, H * sizeof(float));
    for (int h = 0; h < H; ++h) std::memcpy(w2 + (long)h * Vp, W2 + (long)h * V, V * sizeof(float));
    std::memcpy(bias2, b2, V * sizeof(float));

    for (int s = 0; s < k; ++s) {
        const auto [xs, ys] = examples_of(s);
        const float c = -lrs[s] / B;  // every gradient below is B times the true one
        gather(B, T, E, TEp, Ep, emb, xs, x);
        transpose(Bp, TEp, x, TEp, xT, Bp);
        // forward: hT = tanh(W1ᵀ xᵀ + b1), lT = W2ᵀ hT + b2
        gemm<Init::row_bias>(H, Bp, TE, w1, 1, Hp, xT, Bp, hT, Bp, bias1);
        for (long i = 0; i < (long)H * Bp; i += VW) store(hT + i, vtanh(load(hT + i)));
        gemm<Init::row_bias>(V, Bp, H, w2, 1, Vp, hT, Bp, lT, Bp, bias2);
        losses[s] = softmax_minus_onehot(lT, B, Bp, V, ys) / B;
        transpose(Vp, Bp, lT, Bp, dl, Vp);
        // backward: dzT = (W2 dlᵀ) (1 - hT²) (through tanh) before W2 changes; W2 += c hᵀ dl, b2 += c Σ dl
        gemm<Init::tanh_grad>(H, Bp, V, w2, Vp, 1, lT, Bp, dhT, Bp, hT);
        gemm<Init::accumulate>(H, Vp, B, hT, Bp, 1, dl, Vp, w2, Vp, nullptr, c);
        for (int b = 0; b < B; ++b)
            for (int v = 0; v < Vp; v += VW) store(bias2 + v, load(bias2 + v) + c * load(dl + (long)b * Vp + v));
        // dxT = W1 dzT before W1 changes; W1 += c xᵀ dz, b1 += c Σ dz; C += c dx at the contexts
        gemm<Init::zero>(TE, Bp, H, w1, Hp, 1, dhT, Bp, dxT, Bp);
        transpose(Hp, Bp, dhT, Bp, dz, Hp);
        gemm<Init::accumulate>(TE, Hp, B, xT, Bp, 1, dz, Hp, w1, Hp, nullptr, c);
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < Hp; h += VW) store(bias1 + h, load(bias1 + h) + c * load(dz + (long)b * Hp + h));
        transpose(TEp, Bp, dxT, Bp, dx, TEp);
        // a vector at a time into aligned rows: one float at a time into C, a row drawn twice
        // waiting on its own store, this took 0.95 µs of the 20.9 a step at emb 10 / hidden 200
        add_at_contexts(B, T, E, TEp, Ep, c, dx, xs, emb);
    }

    for (int v = 0; v < V; ++v) std::memcpy(C + (long)v * E, emb + (long)v * Ep, E * sizeof(float));
    for (int j = 0; j < TE; ++j) std::memcpy(W1 + (long)j * H, w1 + (long)j * Hp, H * sizeof(float));
    std::memcpy(b1, bias1, H * sizeof(float));
    for (int h = 0; h < H; ++h) std::memcpy(W2 + (long)h * V, w2 + (long)h * Vp, V * sizeof(float));
    std::memcpy(b2, bias2, V * sizeof(float));
    for (float *p : all) std::free(p);
    return 0;
}

}  // namespace

// Floats per vector in this build (the log says it).
extern "C" int sgd_vector_floats() { return VW; }

// 1 if this CPU has the instructions this build was compiled for (CHARMLP_NATIVE_ARCH may name a
// wider target than the machine's), else 0: calling sgd_chunk then would kill the process.
extern "C" int sgd_runs_here() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#if defined(__AVX512F__)
    if (!__builtin_cpu_supports("avx512f")) return 0;
#endif
#if defined(__AVX2__)
    if (!__builtin_cpu_supports("avx2")) return 0;
#endif
#if defined(__FMA__)
    if (!__builtin_cpu_supports("fma")) return 0;
#endif
#if defined(__AVX__)
    if (!__builtin_cpu_supports("avx")) return 0;
#endif
#if defined(__SSE4_2__)
    if (!__builtin_cpu_supports("sse4.2")) return 0;
#endif
#endif
    return 1;
}

// k steps on minibatches X (k, B, T) and Y (k, B), int64 ids; the rest as steps().
extern "C" int sgd_chunk(int k, int B, int T, int E, int H, int V, float *C, float *W1, float *b1, float *W2,
                         float *b2, const int64_t *X, const int64_t *Y, const float *lrs, float *losses) {
    const auto given = [=](int s) { return Examples{X + (long)s * B * T, Y + (long)s * B}; };
    return steps(k, B, T, E, H, V, C, W1, b1, W2, b2, given, lrs, losses);
}

// k steps on the examples at rows ix (k, B) of a split packed as uint8 rows (N, T + 1), each its
// context then its target (core.dataset.pack): read here, so no int64 X and Y are made per chunk.
extern "C" int sgd_chunk_rows(int k, int B, int T, int E, int H, int V, float *C, float *W1, float *b1, float *W2,
                              float *b2, const uint8_t *rows, const int64_t *ix, const float *lrs, float *losses) {
    auto *ids = static_cast<int64_t *>(std::malloc((long)B * (T + 1) * sizeof(int64_t)));  // xs, then ys
    if (!ids) return -1;
    const auto unpacked = [=](int s) {
        for (int b = 0; b < B; ++b) {
            const uint8_t *row = rows + ix[(long)s * B + b] * (T + 1);
            for (int t = 0; t < T; ++t) ids[b * T + t] = row[t];
            ids[(long)B * T + b] = row[T];
        }
        return Examples{ids, ids + (long)B * T};
    };
    const int done = steps(k, B, T, E, H, V, C, W1, b1, W2, b2, unpacked, lrs, losses);
    std::free(ids);
    return done;
}
