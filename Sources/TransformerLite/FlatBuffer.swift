#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An owned, contiguous buffer of `Float`s: the one kind of memory the engine uses for parameters,
/// gradients and activations. Raw pointers to it are handed out only inside closures
/// (`withUnsafe…`), and to kernels of this module.
///
/// Memory comes zeroed from `calloc`: large buffers are lazily zeroed pages, so a gradient buffer
/// whose word-embedding rows are mostly never touched costs resident memory only for the rows used.
public final class FlatBuffer: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    /// Number of floats.
    public let count: Int

    /// A zero-filled buffer of `count` floats.
    public init(count: Int) {
        precondition(count >= 0, "FlatBuffer: negative count")
        guard let raw = calloc(max(count, 1), MemoryLayout<Float>.stride) else {
            fatalError("FlatBuffer: cannot allocate \(count) floats")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { base.update(from: s, count: values.count) }
        }
    }

    deinit { free(base) }

    /// Sets every element to zero.
    public func zero() { base.update(repeating: 0, count: count) }

    @inlinable public subscript(i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return base[i] }
        set { precondition(i >= 0 && i < count); base[i] = newValue }
    }

    /// A copy of the elements `range` (the whole buffer by default).
    public func toArray(_ range: Range<Int>? = nil) -> [Float] {
        let r = range ?? 0..<count
        precondition(r.lowerBound >= 0 && r.upperBound <= count)
        return Array(UnsafeBufferPointer(start: base + r.lowerBound, count: r.count))
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }

    /// Global L2 norm of the elements in `range` (all by default), accumulated in Double
    /// (`VectorMath.sumOfSquares`).
    public func l2Norm(_ range: Range<Int>? = nil) -> Double {
        let r = range ?? 0..<count
        precondition(r.lowerBound >= 0 && r.upperBound <= count)
        return VectorMath.sumOfSquares(base + r.lowerBound, count: r.count).squareRoot()
    }
}
