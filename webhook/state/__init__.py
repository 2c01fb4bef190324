"""The state the cross-object rules read: an in-memory index behind narrow views
that answer each question in O(1), the reservations held until the watch shows
an admitted write, the unique slots, and loading it from manifests.

Fed from YAML here (`fixtures`) or from the cluster's watches (`cluster.watch`).
May import `model` only."""
