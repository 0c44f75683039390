/// BERT's input embeddings before their LayerNorm: word + absolute position + token type.
///
/// Tokens of several sequences are packed one after another (no padding); `positions[t]` is the
/// index of token t inside its own sequence. All token types are 0 (single-segment inputs).
public enum Embedding {
    /// `out[t] = wte[ids[t]] + wpe[positions[t]] + wtt[0]` for t in 0..<n.
    /// - Parameters: out (n, C); ids, positions (n); wte (V, C); wpe (P, C); wtt (TT, C).
    public static func forward(
        out: UnsafeMutablePointer<Float>,
        ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, wtt: UnsafePointer<Float>,
        tokens n: Int, dim C: Int
    ) {
        for t in 0..<n {
            let y = out + t * C
            let w = wte + Int(ids[t]) * C
            let p = wpe + Int(positions[t]) * C
            for i in 0..<C { y[i] = w[i] + p[i] + wtt[i] }
        }
    }

    /// Accumulates `dOut` (n, C) into the rows of the word-embedding gradient that the tokens
    /// use (the gradient stays sparse: other rows are untouched), into token type 0, and — unless
    /// `dWpe` is nil (frozen) — into the position rows.
    public static func backward(
        dWte: UnsafeMutablePointer<Float>, dWpe: UnsafeMutablePointer<Float>?, dWtt: UnsafeMutablePointer<Float>?,
        dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        tokens n: Int, dim C: Int
    ) {
        for t in 0..<n {
            let g = dOut + t * C
            let w = dWte + Int(ids[t]) * C
            for i in 0..<C { w[i] += g[i] }
            if let dWpe {
                let p = dWpe + Int(positions[t]) * C
                for i in 0..<C { p[i] += g[i] }
            }
            if let dWtt { for i in 0..<C { dWtt[i] += g[i] } }
        }
    }
}
