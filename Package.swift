// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "GradNormIR",
    products: [
        .library(name: "GradNormIR", targets: ["GradNormIR"]),
        .library(name: "TransformerLite", targets: ["TransformerLite"]),
        .executable(name: "gradnormir", targets: ["gradnormir"]),
        .executable(name: "bench", targets: ["bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // OpenBLAS (cblas) and LAPACKE, reached only through TransformerLite/BLAS.swift.
        .systemLibrary(name: "CShims", path: "CShims"),
        // The elementwise kernels (GELU, softmax) in C: one body built twice, for AVX2/FMA and the baseline
        // on x86-64, chosen when the program loads.
        .target(
            name: "CKernels",
            path: "Sources/CKernels"),
        .target(
            name: "TransformerLite",
            dependencies: ["CShims", "CKernels"],
            path: "Sources/TransformerLite"),
        .target(
            name: "GradNormIR",
            dependencies: ["TransformerLite"],
            path: "Sources/GradNormIR"),
        // Option types and errors the two programs share (not a product).
        .target(
            name: "CommandLineSupport",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/CommandLineSupport"),
        .executableTarget(
            name: "gradnormir",
            dependencies: [
                "GradNormIR", "TransformerLite", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/gradnormir"),
        .executableTarget(
            name: "bench",
            dependencies: [
                "GradNormIR", "TransformerLite", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/bench"),
        // Float64 references and fixture helpers shared by the test targets; not shipped.
        .target(
            name: "TestSupport",
            dependencies: ["TransformerLite"],
            path: "Tests/TestSupport"),
        .testTarget(
            name: "TransformerLiteTests",
            dependencies: ["TransformerLite", "CKernels", "TestSupport"],
            path: "Tests/TransformerLiteTests"),
        .testTarget(
            name: "GradNormIRTests",
            dependencies: ["GradNormIR", "TransformerLite", "TestSupport"],
            path: "Tests/GradNormIRTests",
            resources: [.copy("Fixtures")]),
        // Runs the built `gradnormir` program as a user would.
        .testTarget(
            name: "CLITests",
            dependencies: ["gradnormir", "TestSupport"],
            path: "Tests/CLITests"),
    ]
)
