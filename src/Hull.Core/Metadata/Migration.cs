namespace Hull.Core.Metadata;

/// <summary>
/// One step of the meta.db schema. Version N turns a version N-1 database into version N; steps are
/// applied in order, each in its own transaction together with the version bump, so a crash
/// mid-upgrade leaves the database at the last fully applied version.
/// </summary>
/// <param name="Version">The schema version after this step (1, 2, 3, … without gaps).</param>
/// <param name="Name">A short description, logged when the step runs.</param>
/// <param name="Sql">The DDL/DML of the step. Released steps are never edited: add a new one.</param>
public sealed record Migration(int Version, string Name, string Sql);
