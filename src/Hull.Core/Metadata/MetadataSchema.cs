namespace Hull.Core.Metadata;

/// <summary>
/// The schema of meta.db as an ordered list of migrations. To change the schema, append a
/// <see cref="Migration"/> with the next version; never edit or reorder a released one, because
/// databases on nodes have already applied it.
/// </summary>
public static class MetadataSchema
{
    /// <summary>
    /// Written to the SQLite header's application_id ("HULL") so a foreign SQLite file at the
    /// meta.db path is recognised and refused instead of being migrated.
    /// </summary>
    public const int ApplicationId = 0x48554C4C;

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "deprecations", """
            CREATE TABLE deprecations (
                id              TEXT    NOT NULL PRIMARY KEY,
                message         TEXT    NOT NULL,
                last_occurrence INTEGER NOT NULL, -- Unix time in nanoseconds, UTC (see MetadataTime)
                occurrences     INTEGER NOT NULL
            ) STRICT;
            """),
        new(2, "content index", """
            -- One row per blob under content/blobs/<algorithm>/<hex>; GC finds unreferenced blobs here.
            CREATE TABLE content (
                digest     TEXT    NOT NULL PRIMARY KEY, -- "sha256:<hex>"
                size       INTEGER NOT NULL,
                media_type TEXT,                         -- as the writer knew it; NULL when re-indexed from disk
                labels     TEXT    NOT NULL DEFAULT '{}', -- JSON object of string labels
                created    INTEGER NOT NULL,             -- Unix nanoseconds (MetadataTime)
                updated    INTEGER NOT NULL
            ) STRICT;
            """),
        new(3, "snapshots", """
            -- Snapshots of every snapshotter. id names the directory snapshots/<snapshotter>/<id> and is never
            -- reused (AUTOINCREMENT), so a half-removed directory can never be mistaken for a new snapshot.
            CREATE TABLE snapshots (
                id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
                snapshotter TEXT    NOT NULL,
                key         TEXT    NOT NULL,             -- the key of an active/view snapshot, the name of a committed one
                kind        TEXT    NOT NULL CHECK (kind IN ('active', 'committed', 'view')),
                parent_id   INTEGER REFERENCES snapshots (id), -- a committed snapshot; RESTRICT keeps parents of children
                labels      TEXT    NOT NULL DEFAULT '{}', -- JSON object of string labels
                created     INTEGER NOT NULL,             -- Unix nanoseconds (MetadataTime)
                updated     INTEGER NOT NULL,
                UNIQUE (snapshotter, key)
            ) STRICT;
            CREATE INDEX snapshots_parent ON snapshots (parent_id);
            """),
        new(4, "images", """
            -- Image names (tags and digest references) and what they point at. Several names may share one
            -- image: CRI groups them by config_digest, the image ID.
            CREATE TABLE images (
                name              TEXT    NOT NULL PRIMARY KEY, -- normalised, e.g. docker.io/library/busybox:latest
                target_media_type TEXT    NOT NULL,             -- the index or manifest the name resolved to
                target_digest     TEXT    NOT NULL,
                target_size       INTEGER NOT NULL,
                manifest_digest   TEXT    NOT NULL,             -- the platform manifest that was unpacked
                config_digest     TEXT    NOT NULL,             -- the image ID
                chain_id          TEXT    NOT NULL,             -- top committed snapshot of the unpacked layers
                snapshotter       TEXT    NOT NULL,
                size              INTEGER NOT NULL,             -- compressed size of config and layers
                labels            TEXT    NOT NULL DEFAULT '{}',
                created           INTEGER NOT NULL,             -- Unix nanoseconds (MetadataTime)
                updated           INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX images_config ON images (config_digest);
            """),
        new(5, "sandboxes", """
            -- Pod sandboxes, written before a sandbox's resources are made (state 'creating') so a crash mid-create
            -- can be undone at the next start, and kept until RemovePodSandbox. spec and instance are JSON: enough to
            -- answer status and list and to redo the teardown (CNI DEL, namespace pins, cgroup) after a restart.
            CREATE TABLE sandboxes (
                id              TEXT    NOT NULL PRIMARY KEY,
                name            TEXT    NOT NULL,
                namespace       TEXT    NOT NULL,
                uid             TEXT    NOT NULL,
                attempt         INTEGER NOT NULL,
                runtime_handler TEXT    NOT NULL,
                state           TEXT    NOT NULL CHECK (state IN ('creating', 'ready', 'notready')),
                created         INTEGER NOT NULL,             -- Unix nanoseconds (MetadataTime)
                exited          INTEGER,                      -- NULL while ready
                netns_path      TEXT    NOT NULL DEFAULT '',
                ips             TEXT    NOT NULL DEFAULT '[]', -- JSON array of addresses, primary first
                spec            TEXT    NOT NULL,             -- JSON PodSandboxSpec
                instance        TEXT    NOT NULL DEFAULT '{}', -- JSON of what the sandboxer made (paths, pid, cgroup)
                labels          TEXT    NOT NULL DEFAULT '{}',
                annotations     TEXT    NOT NULL DEFAULT '{}'
            ) STRICT;
            """),
        new(6, "containers", """
            -- Containers, written before a container's resources are made (state 'creating') so a crash mid-create can be
            -- undone at the next start, and kept until RemoveContainer. The id is also the container's snapshot key, so
            -- the image garbage collector keeps every snapshot listed here. record is JSON: enough to answer status and
            -- list and to find the task, bundle and snapshot again after a restart.
            CREATE TABLE containers (
                id          TEXT    NOT NULL PRIMARY KEY,
                sandbox_id  TEXT    NOT NULL,
                name        TEXT    NOT NULL,
                attempt     INTEGER NOT NULL,
                state       TEXT    NOT NULL CHECK (state IN ('creating', 'created', 'running', 'exited', 'unknown')),
                created     INTEGER NOT NULL,             -- Unix nanoseconds (MetadataTime)
                record      TEXT    NOT NULL              -- JSON ContainerRecord
            ) STRICT;
            CREATE INDEX containers_sandbox ON containers (sandbox_id);
            """),
    ];

    public static int LatestVersion => Migrations[^1].Version;

    /// <summary>Checks that versions run 1, 2, 3, … with no gap or duplicate.</summary>
    internal static void Validate(IReadOnlyList<Migration> migrations)
    {
        for (int i = 0; i < migrations.Count; i++)
        {
            if (migrations[i].Version != i + 1)
                throw new InvalidOperationException(
                    $"metadata migration #{i} (\"{migrations[i].Name}\") has version {migrations[i].Version}, expected {i + 1}");
        }
    }
}
