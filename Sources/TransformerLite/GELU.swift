/// The exact (erf) Gaussian error linear unit used by BERT's feed-forward blocks:
///   gelu(x) = x·Φ(x) = ½·x·(1 + erf(x/√2)),   gelu'(x) = Φ(x) + x·φ(x),  φ(x) = e^{−x²/2}/√(2π).
/// Φ is evaluated with `VectorMath.normalCDF` (relative error ~1e-7), eight lanes at a time.
public enum GELU {
    static let invSqrt2Pi: Float = 0.39894228040143268

    /// `out[i] = gelu(input[i])` for `count` elements. `out` may alias `input`.
    public static func forward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let x = load(input + i)
            store(x * VectorMath.normalCDF(x), out + i)
            i += 8
        }
        if i < count {
            let x = loadPartial(input + i, count - i)
            storePartial(x * VectorMath.normalCDF(x), out + i, count - i)
        }
    }

    /// `dInput[i] = dOut[i] · gelu'(input[i])` (overwrites). `dInput` may alias `dOut`, so the
    /// encoder's backward turns the GELU output's gradient into the pre-activation's in place.
    public static func backward(dInput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                                dOut: UnsafePointer<Float>, count: Int) {
        @inline(__always) func grad(_ x: VectorMath.V) -> VectorMath.V {
            VectorMath.normalCDF(x) + x * invSqrt2Pi * VectorMath.exp(-0.5 * x * x)
        }
        var i = 0
        while i + 8 <= count {
            store(load(dOut + i) * grad(load(input + i)), dInput + i)
            i += 8
        }
        if i < count {
            let k = count - i
            storePartial(loadPartial(dOut + i, k) * grad(loadPartial(input + i, k)), dInput + i, k)
        }
    }
}

@inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
@inline(__always) func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ k: Int) -> SIMD8<Float> {
    var v = SIMD8<Float>(repeating: 0)
    for j in 0..<k { v[j] = p[j] }
    return v
}
@inline(__always) func loadPartial(_ p: UnsafeMutablePointer<Float>, _ k: Int) -> SIMD8<Float> {
    loadPartial(UnsafePointer(p), k)
}
@inline(__always) func storePartial(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ k: Int) {
    for j in 0..<k { p[j] = v[j] }
}
