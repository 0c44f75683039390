/// Sentence pooling of the last token states, and L2 normalisation (sentence-transformers'
/// `Pooling` and `Normalize` modules).
public enum Pooling {
    /// Pools each span of `hidden` (n, C) into one row of `out` (S, C): the mean of its tokens
    /// (every packed token is real, so this equals mean pooling with the attention mask), or the
    /// first token's state for CLS pooling.
    public static func forward(out: UnsafeMutablePointer<Float>, hidden: UnsafePointer<Float>,
                               spans: [SequenceSpan], dim C: Int, mode: EncoderConfig.Pooling) {
        for (s, span) in spans.enumerated() {
            let y = out + s * C
            switch mode {
            case .cls:
                y.update(from: hidden + span.start * C, count: C)
            case .mean:
                y.update(repeating: 0, count: C)
                for t in span.start..<(span.start + span.length) {
                    let x = hidden + t * C
                    for i in 0..<C { y[i] += x[i] }
                }
                let inv = 1 / Float(span.length)
                for i in 0..<C { y[i] *= inv }
            }
        }
    }

    /// Accumulates `dOut` (S, C) into `dHidden` (n, C): `dh_t += dy_s / T` for mean pooling,
    /// `dh_first += dy_s` for CLS.
    public static func backward(dHidden: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                spans: [SequenceSpan], dim C: Int, mode: EncoderConfig.Pooling) {
        for (s, span) in spans.enumerated() {
            let g = dOut + s * C
            switch mode {
            case .cls:
                let d = dHidden + span.start * C
                for i in 0..<C { d[i] += g[i] }
            case .mean:
                let inv = 1 / Float(span.length)
                for t in span.start..<(span.start + span.length) {
                    let d = dHidden + t * C
                    for i in 0..<C { d[i] += g[i] * inv }
                }
            }
        }
    }
}

/// Row-wise L2 normalisation y = x / ‖x‖ (‖x‖ floored at 1e-12 like `torch.nn.functional.normalize`).
public enum L2Normalize {
    /// - Parameters: out (rows, C); norms (rows) saved for the backward; input (rows, C).
    public static func forward(out: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
                               input: UnsafePointer<Float>, rows: Int, dim C: Int) {
        for r in 0..<rows {
            let x = input + r * C, y = out + r * C
            var s: Float = 0
            for i in 0..<C { s += x[i] * x[i] }
            let n = max(s.squareRoot(), 1e-12)
            norms[r] = n
            let inv = 1 / n
            for i in 0..<C { y[i] = x[i] * inv }
        }
    }

    /// `dx += (dy − y·(y·dy)) / ‖x‖`, using the saved output `y` and norm.
    public static func backward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                                out: UnsafePointer<Float>, norms: UnsafePointer<Float>, rows: Int, dim C: Int) {
        for r in 0..<rows {
            let y = out + r * C, dy = dOut + r * C, dx = dInput + r * C
            var dot: Float = 0
            for i in 0..<C { dot += y[i] * dy[i] }
            let inv = 1 / norms[r]
            for i in 0..<C { dx[i] += (dy[i] - y[i] * dot) * inv }
        }
    }
}
