// Vectors as wide as the target's registers (GCC/Clang vector extensions) and what sgd_chunk.cpp
// does with whole vectors: e^x, tanh, the max, register-tile transposes. Included by it alone.

#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;  // floats per vector: one register
#elif defined(__AVX__)
constexpr int VW = 8;
#else  // SSE2 (the x86-64 baseline), NEON, or a target without vectors: the compiler lowers them
constexpr int VW = 4;
#endif
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VW * sizeof(int32_t))));

inline int padded(int n) { return (n + VW - 1) / VW * VW; }
inline vf load(const float *p) { return *reinterpret_cast<const vf *>(p); }
inline void store(float *p, vf v) { *reinterpret_cast<vf *>(p) = v; }
inline vf splat(float x) { return vf{} + x; }
inline vf loadu(const float *p) {  // at any float's address
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void storeu(float *p, vf v) { std::memcpy(p, &v, sizeof v); }

// e^x to ~1 ulp (Cephes' expf polynomial after x = n ln2 + r); clamped to the float range.
inline vf vexp(vf x) {
    x = x < -87.0f ? splat(-87.0f) : x;
    x = x > 88.0f ? splat(88.0f) : x;
    vf t = x * 1.44269504088896341f + 0.5f;
    vi n = __builtin_convertvector(t, vi);
    vf fn = __builtin_convertvector(n, vf);
    vi down = fn > t;  // truncation rounded a negative t up: floor
    n += down;         // true is -1
    fn = __builtin_convertvector(n, vf);
    vf r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
    vf p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vi bits = (n + 127) << 23;
    return p * reinterpret_cast<vf &>(bits);
}

// tanh as Eigen's rational approximation (degree 13 / 6, clamped to ±7.9), within 3e-7 of tanh: 14
// vector operations where 1 - 2 / (e^{2x} + 1) took ~28 (the lecture's step: 1.38 -> 0.85 µs).
inline vf vtanh(vf x) {
    constexpr float edge = 7.90531110763549805f;  // tanh is 1 to float beyond; the approximation is not
    x = x < -edge ? splat(-edge) : x;
    x = x > edge ? splat(edge) : x;
    const vf x2 = x * x;
    vf p = splat(-2.76076847742355e-16f);
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    vf q = splat(1.19825839466702e-06f);
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p * x / q;
}

inline vf vmax(vf a, vf b) { return a > b ? a : b; }

inline vi lanes() {
    vi r{};
    for (int i = 0; i < VW; ++i) r[i] = i;
    return r;
}

#if defined(__has_builtin) && __has_builtin(__builtin_shufflevector)
// Lanes [0, VW/2) (HI 0) or [VW/2, VW) (HI 1) of a and b, interleaved: a0 b0 a1 b1 ...
template <int HI, std::size_t... P>
inline vf zip(vf a, vf b, std::index_sequence<P...>) {
    return __builtin_shufflevector(a, b, (HI * VW / 2 + (P % 2 ? VW + P / 2 : P / 2))...);
}

// dst (VW x VW, rows ldd apart) = srcᵀ in registers: log2(VW) rounds that interleave rows i and
// i + VW/2, each moving one bit of the row index into the column index (~4 shuffles an element
// fewer than the scalar copy, which took 12% of the lecture's step)
inline void transpose_tile(const float *src, long lds, float *dst, long ldd) {
    constexpr auto seq = std::make_index_sequence<VW>{};
    vf r[VW], t[VW];
    for (int i = 0; i < VW; ++i) r[i] = load(src + i * lds);
    for (int round = 1; round < VW; round *= 2) {
        for (int i = 0; i < VW / 2; ++i) t[2 * i] = zip<0>(r[i], r[i + VW / 2], seq), t[2 * i + 1] = zip<1>(r[i], r[i + VW / 2], seq);
        for (int i = 0; i < VW; ++i) r[i] = t[i];
    }
    for (int i = 0; i < VW; ++i) store(dst + i * ldd, r[i]);
}
#else  // a compiler without the shuffle (GCC before 12): one element at a time
inline void transpose_tile(const float *src, long lds, float *dst, long ldd) {
    for (int c = 0; c < VW; ++c) for (int r = 0; r < VW; ++r) dst[c * ldd + r] = src[r * lds + c];
}
#endif

// dst (cols x rows, rows ldd apart) = srcᵀ (rows x cols, rows lds apart), both multiples of VW, in
// VW x VW tiles, so the lines touched stay in L1 whatever the strides (a 2 KB stride, hidden 500
// padded to 512, once put every access of a row-by-row copy in the same cache set)
void transpose(int rows, int cols, const float *src, long lds, float *dst, long ldd) {
    for (int r = 0; r < rows; r += VW)
        for (int c = 0; c < cols; c += VW) transpose_tile(src + r * lds + c, lds, dst + c * ldd + r, ldd);
}

}  // namespace
