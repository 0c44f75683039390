// Written by scripts/detector_study.py --write-default; do not edit by hand.
extension FailureModel {
    /// Fitted (weighted, L2 0.001) on 18319 documents of the training corpora only, with
    /// all-MiniLM-L6-v2 at 256 tokens:
    /// lang/da, lang/de, lang/en, lang/ru, topic/admin, topic/gnu-r, topic/haskell,
    /// topic/javascript, topic/libdevel, topic/libs, topic/net, topic/perl, topic/rust, topic/x11.
    public static let `default` = FailureModel(
        means: [0.6289375447147991, 0.7122668253733827, 1.9148207311585852, 1.123598808631834e-05, 0.2102830431363726, 4.366565254755059],
        scales: [0.12763179788065607, 0.1301641003549424, 1.112996368770817, 0.0006762514409003928, 0.18834378115339376, 0.6833154023028231],
        weights: [0.9901945007667152, -0.6741233603553051, 0.30631355961508216, -0.004439018285191581, 0.05063816038153519, 0.1549792035501155],
        intercept: -1.2797541010012616)
}
