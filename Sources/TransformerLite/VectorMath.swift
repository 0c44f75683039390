/// Reductions over float buffers, eight lanes at a time with Swift SIMD. (The elementwise
/// functions of softmax and GELU are C kernels: `CKernels`.)
public enum VectorMath {
    /// Σ x² over `count` floats, accumulated in Double eight lanes at a time (lane sums added
    /// at the end): the squared L2 norm of a gradient or parameter range.
    @inline(__always)
    public static func sumOfSquares(_ p: UnsafePointer<Float>, count: Int) -> Double {
        var acc = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            let v = SIMD8<Double>(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self))
            acc += v * v
            i += 8
        }
        var s = acc.sum()
        while i < count { let v = Double(p[i]); s += v * v; i += 1 }
        return s
    }
}
