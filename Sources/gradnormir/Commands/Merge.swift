import ArgumentParser
import Foundation
import CommandLineSupport
import GradNormIR

/// `gradnormir merge`: the shard files of one run → the file a single run writes.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the N shards of one `score`, `predict` or `index` run (--shard K/N) into what a single run writes.",
        discussion: """
            Checks that the shards share their settings and fingerprints, that every shard 1…N is given once and \
            finished, and that no document is in two shards; then writes OUT and OUT.meta.json, byte for byte what \
            the same command without --shard writes. Shards of `index` are folders; OUT is then the index folder. \
            A finished OUT with the same content is left as it is.
            """)

    @Option(help: "The merged file (or index folder).") var out: String
    @Argument(help: "The shard files, or index shard folders (any order).") var shards: [String]

    func validate() throws {
        guard !shards.isEmpty else { throw OptionError("give the shard files to merge") }
    }

    func run() throws {
        try reportingErrors {
            var isFolder: ObjCBool = false
            let folders = FileManager.default.fileExists(atPath: shards[0], isDirectory: &isFolder) && isFolder.boolValue
            let wrote = folders ? try EmbeddingIndex.merge(shards: shards, out: out) : try ShardMerge.merge(shards: shards, out: out)
            note(wrote ? "merge: \(shards.count) shards → \(out)" : "merge: \(out) already holds these shards merged")
        }
    }
}
