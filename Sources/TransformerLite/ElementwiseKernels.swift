import CKernels

/// The C kernels behind GELU and softmax (`CKernels`): which instruction set they run with.
public enum ElementwiseKernels {
    /// "x86-64-v3 (AVX2, FMA)" on CPUs that have both, else "baseline" — for reports.
    public static var instructionSet: String { String(cString: gni_kernel_set()) }
}
