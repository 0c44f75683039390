/// Divides `row` by its L2 norm, accumulated in Double and floored at 1e-12 (as
/// `torch.nn.functional.normalize`), each value computed as `T(Double(x) / norm)`; a zero row
/// stays zero. Returns the norm before the floor. The one row normalisation of the library: search
/// embeddings, the kNN baseline's rows and IPQ's sub-vectors.
@discardableResult
func l2Normalize<T: BinaryFloatingPoint>(_ row: UnsafeMutableBufferPointer<T>) -> Double {
    var s = 0.0
    for v in row { s += Double(v) * Double(v) }
    let norm = s.squareRoot()
    let n = max(norm, 1e-12)
    for i in row.indices { row[i] = T(Double(row[i]) / n) }
    return norm
}
